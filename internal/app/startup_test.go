package app

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/internal/config"
)

// What the configuration check accepts, serve's start-up builds: check-config in the
// systemd pre-start must not pass a file the start then refuses. Listening is left out
// (ports may be taken); the addresses' form is part of the check.
func FuzzAcceptedConfigStarts(f *testing.F) {
	if data, err := os.ReadFile(filepath.Join("..", "..", "examples", "crmlink.yaml")); err == nil {
		f.Add(data)
	}
	f.Add([]byte("managers: [{crm_user: 5, endpoints: [PJSIP/101], schedule: {hours: \"22:00-06:00\", days: [mon]}}]"))
	f.Add([]byte("sip_redirect: {enabled: true, fallback_contact: \"sip:fallback-{reason}-{owner}-{source}@127.0.0.1:5060\", allowed_networks: [10.0.0.0/8]}"))
	f.Add([]byte("amocrm: {base_url: \"https://x.amocrm.ru\", token: t, rate_limit: 0.5}\nchat: {platforms: [{platform: jivo, webhook_secret: jivo-secret-0123456789}], leads: {enabled: true}}"))
	f.Add([]byte("asterisk: {ari: {enabled: true, url: \"http://127.0.0.1:8088/ari\", ws_url: \"ws://127.0.0.1:8088/ari/events\"}}\nagi: {enabled: true}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := config.Parse(b)
		if err != nil {
			return
		}
		cfg.DataDir = t.TempDir()
		cfg.Redis.Addrs = nil // the event queue would connect; the disk queue is built instead
		p, err := New(cfg, zerolog.Nop())
		if err != nil {
			t.Fatalf("check-config accepts this file but serve refuses it: %v\n%s", err, b)
		}
		p.Close()
	})
}
