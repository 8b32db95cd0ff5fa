package config

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func exampleFile(t *testing.T) string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(here), "..", "..", "examples", "crmlink.yaml")
}

func TestExampleFileIsValid(t *testing.T) {
	cfg, err := Load(exampleFile(t))
	require.NoError(t, err)
	assert.Equal(t, 1500*time.Millisecond, cfg.Routing.LookupTimeout)
	assert.Equal(t, 6*time.Hour, cfg.Routing.CacheTTL)
	require.Len(t, cfg.Managers, 2)
	assert.Equal(t, []string{"PJSIP/102", "PJSIP/79161234567@trunk"}, cfg.Managers[1].Endpoints)
}

// The example must show every key: a key added to the structs and forgotten in the
// example fails here.
func TestExampleFileShowsEveryKey(t *testing.T) {
	data, err := os.ReadFile(exampleFile(t))
	require.NoError(t, err)
	types := []string{"config.Config", "config.Log", "config.HTTP", "config.Redis", "config.Cluster", "config.Asterisk", "config.ARI", "config.ARIInbound", "config.Fallback", "config.Observer",
		"config.AGI", "config.SIP", "config.AmoCRM", "config.OAuth", "config.Routing", "config.Manager", "config.Schedule", "config.Queue",
		"scenarios.Config", "scenarios.Incoming", "scenarios.IncomingUnknown", "scenarios.KnownClient", "scenarios.Missed", "scenarios.Outgoing",
		"scenarios.OutgoingUnknown", "scenarios.Unanswered", "scenarios.Notes"}
	for _, typ := range types {
		require.NotEmpty(t, keysOf(typ), typ)
		for _, k := range keysOf(typ) {
			assert.Contains(t, string(data), k+":", "examples/crmlink.yaml lacks key %q of %s", k, typ)
		}
	}
}

func TestEmptyConfigGivesDefaults(t *testing.T) {
	cfg, err := Parse(nil)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:8080", cfg.HTTP.Listen)
	assert.False(t, cfg.Redis.Enabled())
	assert.False(t, cfg.AmoCRM.Configured())
	assert.Equal(t, []string{"lead", "contact", "company"}, cfg.Routing.Precedence)
	assert.Equal(t, 2*time.Hour, cfg.Queue.RetryFor, "outlasts an amoCRM maintenance window")
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string // substrings, each expected in the error
	}{
		{"misspelt top-level key", "routng:\n  enabled: true\n", []string{`line 1: unknown key "routng"`, "allowed here:", "routing"}},
		{"misspelt nested key", "routing:\n  lookup_timout: 1s\n", []string{`line 2: unknown key "lookup_timout"`, "lookup_timeout"}},
		{"bad duration", "routing:\n  lookup_timeout: soon\n", []string{`routing.lookup_timeout: "soon" is not a duration (e.g. 1500ms, 2s, 6h) (line 2)`}},
		{"a list for a number", "redis: {db: [1]}\n", []string{"redis.db: a list is not a whole number"}},
		{"a scalar for a list", "managers:\n  - crm_user: 5\n    endpoints: PJSIP/101\n", []string{`managers[0].endpoints: "PJSIP/101" is not a list`}},
		{"whole-day hours written as start equals end", "managers: [{crm_user: 5, endpoints: [PJSIP/101], schedule: {hours: \"09:00-09:00\"}}]\n", []string{`managers[0].schedule.hours "09:00-09:00": start equals end; use 00:00-24:00`}},
		{"port not a number", "http: {listen: \"127.0.0.1:abc\"}\n", []string{`http.listen: is "127.0.0.1:abc"; allowed: host:port with a port number`}},
		{"timeout out of range", "routing:\n  lookup_timeout: 1ms\n", []string{"routing.lookup_timeout: is 1ms; allowed: 50ms to 30s"}},
		{"bad precedence", "routing:\n  precedence: [lead, deal]\n", []string{`routing.precedence[1]: is "deal"; allowed: lead, contact, company`}},
		{"bad log level", "log:\n  level: loud\n", []string{`log.level: is "loud"; allowed: debug, info, warn, error`}},
		{"bad listen", "http:\n  listen: localhost\n", []string{`http.listen: is "localhost"; allowed: host:port`}},
		{"token and oauth", "amocrm:\n  base_url: https://x.amocrm.ru\n  token: t\n  oauth:\n    client_id: c\n", []string{"amocrm.token: and amocrm.oauth are both set"}},
		{"no credentials", "amocrm:\n  base_url: https://x.amocrm.ru\n", []string{"amocrm.token: is empty"}},
		{"manager without endpoints", "managers:\n  - crm_user: 5\n", []string{"managers[0].endpoints: is empty"}},
		{"duplicate manager", "managers:\n  - crm_user: 5\n    endpoints: [PJSIP/101]\n  - crm_user: 5\n    endpoints: [PJSIP/102]\n", []string{"managers[1].crm_user: 5 is already mapped in managers[0]"}},
		{"bad endpoint", "managers:\n  - crm_user: 5\n    endpoints: [\"101\"]\n", []string{`managers[0].endpoints[0]: is "101"; allowed: an Asterisk dial string`}},
		{"bad schedule", "managers:\n  - crm_user: 5\n    endpoints: [PJSIP/101]\n    schedule:\n      timezone: Mars/Olympus\n      days: [monday]\n      hours: 9-18\n      days_off: [01.01.2027]\n",
			[]string{"schedule.timezone", "schedule.days[0]", "schedule.hours", "schedule.days_off[0]"}},
		{"bad network", "sip_redirect:\n  enabled: true\n  allowed_networks: [10.0.0.0]\n", []string{"sip_redirect.allowed_networks[0]"}},
		{"retry horizon too short", "queue:\n  retry_for: 30s\n", []string{"queue.retry_for: is 30s; allowed: 1m to 72h"}},
		{"retry horizon too long", "queue:\n  retry_for: 240h\n", []string{"queue.retry_for: is 240h0m0s; allowed: 1m to 72h"}},
		{"observer named like the controller", "asterisk:\n  observer: {enabled: true, application: crmlink}\n",
			[]string{`asterisk.observer.application: is "crmlink", the name of asterisk.ari.application; the observer needs a name of its own`}},
		{"observer credit misspelt", "asterisk:\n  observer: {enabled: true, credit: last}\n",
			[]string{`asterisk.observer.credit: is "last"; allowed: first_answered, last_answered`}},
		{"observer inbound without the inbound listener", "asterisk:\n  observer: {enabled: true, inbound: true}\n",
			[]string{`asterisk.observer.inbound: is true but asterisk.ari.inbound.enabled is false`}},
		{"bad office endpoint", "asterisk:\n  observer: {enabled: true, office_endpoints: [\"100\"]}\n",
			[]string{`asterisk.observer.office_endpoints[0]: is "100"; allowed: an Asterisk endpoint TECH/resource`}},
		{"unknown page time zone", "ui:\n  timezone: Europe/Atlantis\n", []string{`ui.timezone: is "Europe/Atlantis"`, "allowed: an IANA time zone name"}},
		{"call card without amoCRM", "amocrm:\n  call_card: {enabled: true}\n", []string{"amocrm.call_card.enabled: is true but no amoCRM account is configured"}},
		{"call card delay out of range", "amocrm:\n  base_url: https://x.amocrm.ru\n  token: t\n  call_card: {enabled: true, max_delay: 30s}\n",
			[]string{"amocrm.call_card.max_delay: is 30s; allowed: 100ms to 10s"}},
		{"recordings without URL and secret", "recordings:\n  enabled: true\n",
			[]string{"recordings.public_url: is empty", "recordings.secret: has 0 characters; allowed: at least 16"}},
		{"recordings with a template too", "recording_url: https://pbx/{linkedid}.mp3\nrecordings: {enabled: true, public_url: \"https://rec.example.com\", secret: 0123456789abcdef}\n",
			[]string{"recording_url: and recordings.enabled are both set"}},
		{"recordings from an unknown source", "recordings: {enabled: true, public_url: \"https://rec.example.com\", secret: 0123456789abcdef, source: s3}\n",
			[]string{`recordings.source: is "s3"; allowed: ari`}},
		{"recording name without the call", "recordings: {enabled: true, public_url: \"https://rec.example.com\", secret: 0123456789abcdef, name: rec}\n",
			[]string{`recordings.name: is "rec"; allowed: a file name`}},
		{"peers without redis", "cluster: {peers: [\"http://crmlink-2:8080\"]}\n", []string{"cluster.peers: lists 1 peers but redis.addrs is empty"}},
		{"peer not a URL", "redis: {addrs: [\"127.0.0.1:6379\"]}\ncluster: {peers: [\"crmlink-2:8080\"]}\n", []string{"cluster.peers[0]"}},
		{"click-to-call named like the observer", "click_to_call: {enabled: true, application: crmlink-observer}\n",
			[]string{`click_to_call.application: is "crmlink-observer", the name of asterisk.ari.application or asterisk.observer.application`}},
		{"click-to-call secret too short", "click_to_call: {enabled: true, key_secret: short}\n",
			[]string{"click_to_call.key_secret: is 5 characters; allowed: empty (http.token only) or at least 32"}},
		{"click-to-call origin with a path", "click_to_call: {enabled: true, allowed_origins: [\"https://example.amocrm.ru/leads\"]}\n",
			[]string{`click_to_call.allowed_origins[0]: is "https://example.amocrm.ru/leads"; allowed: an origin scheme://host[:port] without a path`}},
		{"click-to-call without a context", "click_to_call: {enabled: true, context: \"\"}\n",
			[]string{"click_to_call.context: is empty"}},
		{"caller id with letters", "managers:\n  - {crm_user: 1, endpoints: [PJSIP/101], caller_id: \"OFFICE\"}\n",
			[]string{`managers[0].caller_id: is "OFFICE"; allowed: the number the client sees`}},
		{"bad ARI transport", "asterisk:\n  ari: {transport: tcp}\n", []string{`asterisk.ari.transport: is "tcp"; allowed: auto, websocket, http`}},
		{"bad ringing", "asterisk:\n  ari: {ringing: asterisk}\n", []string{`asterisk.ari.ringing: is "asterisk"; allowed: bridge, dialplan`}},
		{"dialplan ringing without a context", "asterisk:\n  ari: {ringing: dialplan, dial_context: \"\"}\n",
			[]string{`asterisk.ari.dial_context: is ""; allowed: a dialplan context name`}},
		{"dial context with a comma", "asterisk:\n  ari: {ringing: dialplan, dial_context: \"a,b\"}\n",
			[]string{`asterisk.ari.dial_context: is "a,b"; allowed: a dialplan context name`}},
		{"ARI inbound without a password", "asterisk:\n  ari: {inbound: {enabled: true}}\n",
			[]string{"asterisk.ari.inbound.password: is empty; allowed: the password of websocket_client.conf"}},
		{"ARI inbound listen without a port", "asterisk:\n  ari: {inbound: {enabled: true, listen: 127.0.0.1, password: x}}\n",
			[]string{`asterisk.ari.inbound.listen: is "127.0.0.1"; allowed: host:port`}},
		{"ARI inbound without a username", "asterisk:\n  ari: {inbound: {enabled: true, username: \"\", password: x}}\n",
			[]string{"asterisk.ari.inbound.username: is empty"}},
		{"ARI inbound alone still checks the application", "asterisk:\n  ari: {enabled: false, application: \"a b\", inbound: {enabled: true, password: x}}\n",
			[]string{`asterisk.ari.application: is "a b"; one application name`}},
		{"not yaml", "routing: [\n", []string{"line"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml))
			require.Error(t, err)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestEveryErrorIsReported(t *testing.T) {
	_, err := Parse([]byte("log:\n  level: loud\n  format: xml\nhttp:\n  listen: nope\n"))
	require.Error(t, err)
	assert.Len(t, strings.Split(err.Error(), "\n"), 3)
}

func TestClickToCallSecretFromEnvironment(t *testing.T) {
	t.Setenv("CRMLINK_CLICK_TO_CALL_KEY_SECRET", "env-click-to-call-secret-0123456789abcdef")
	cfg, err := Parse([]byte("click_to_call: {enabled: true}\n"))
	require.NoError(t, err)
	assert.Equal(t, "env-click-to-call-secret-0123456789abcdef", cfg.ClickToCall.KeySecret)
}

func TestSecretsFromEnvironment(t *testing.T) {
	t.Setenv("CRMLINK_RECORDINGS_SECRET", "rec-env")
	t.Setenv("CRMLINK_AMOCRM_TOKEN", "from-env")
	t.Setenv("CRMLINK_ARI_PASSWORD", "ari-env")
	cfg, err := Parse([]byte("amocrm:\n  base_url: https://x.amocrm.ru\n"))
	require.NoError(t, err)
	assert.Equal(t, "from-env", cfg.AmoCRM.Token)
	assert.Equal(t, "ari-env", cfg.Asterisk.ARI.Password)
	assert.Equal(t, "rec-env", cfg.Recordings.Secret)
}

func TestChatSecretsFromEnvironment(t *testing.T) {
	t.Setenv("CRMLINK_AMOCRM_TOKEN", "from-env")
	t.Setenv("CRMLINK_CHAT_WAZZUP_API_KEY", "wazzup-key-from-env")
	t.Setenv("CRMLINK_CHAT_WAZZUP_WEBHOOK_SECRET", "wazzup-secret-from-env-0123")
	t.Setenv("CRMLINK_CHAT_JIVO_WEBHOOK_SECRET", "jivo-secret-from-env-01234")
	cfg, err := Parse([]byte(`amocrm: {base_url: "https://x.amocrm.ru"}
chat:
  platforms:
    - {platform: wazzup, sync: true, api_url: "https://api.wazzup24.com"}
    - {platform: jivo}
`))
	require.NoError(t, err)
	assert.Equal(t, "wazzup-key-from-env", cfg.Chat.Platforms[0].APIKey)
	assert.Equal(t, "wazzup-secret-from-env-0123", cfg.Chat.Platforms[0].WebhookSecret)
	assert.Equal(t, "jivo-secret-from-env-01234", cfg.Chat.Platforms[1].WebhookSecret)

	t.Setenv("CRMLINK_CHAT_WAZZUP_API_KEY", "")
	_, err = Parse([]byte(`amocrm: {base_url: "https://x.amocrm.ru"}
chat: {platforms: [{platform: wazzup, sync: true, api_url: "https://api.wazzup24.com"}]}
`))
	require.ErrorContains(t, err, "chat.platforms[0].api_key: is empty")
}

func TestChatAppCredentialsFromEnvironment(t *testing.T) {
	t.Setenv("CRMLINK_AMOCRM_TOKEN", "from-env")
	t.Setenv("CRMLINK_CHAT_CHATAPP_EMAIL", "owner@example.com")
	t.Setenv("CRMLINK_CHAT_CHATAPP_APP_ID", "app_1_1")
	t.Setenv("CRMLINK_CHAT_CHATAPP_PASSWORD", "password-from-env")
	t.Setenv("CRMLINK_CHAT_CHATAPP_WEBHOOK_SECRET", "chatapp-secret-from-env-0123")
	cfg, err := Parse([]byte(`amocrm: {base_url: "https://x.amocrm.ru"}
chat:
  platforms:
    - {platform: chatapp, sync: true, api_url: "https://api.chatapp.online", licenses: [{id: "1", messenger: grWhatsApp}]}
`))
	require.NoError(t, err)
	p := cfg.Chat.Platforms[0]
	assert.Equal(t, []string{"owner@example.com", "app_1_1", "password-from-env"}, []string{p.Email, p.AppID, p.Password})

	t.Setenv("CRMLINK_CHAT_CHATAPP_PASSWORD", "")
	_, err = Parse([]byte(`amocrm: {base_url: "https://x.amocrm.ru"}
chat:
  platforms:
    - {platform: chatapp, sync: true, api_url: "https://api.chatapp.online", api_key: pasted, licenses: [{id: "1", messenger: grWhatsApp}]}
`))
	require.ErrorContains(t, err, "chat.platforms[0].api_key: is set, but ChatApp's access tokens expire after 24 hours")
	require.ErrorContains(t, err, "chat.platforms[0].password: is empty; set CRMLINK_CHAT_CHATAPP_PASSWORD")
}

func TestChatNeedsAmoCRM(t *testing.T) {
	_, err := Parse([]byte("chat: {platforms: [{platform: jivo, webhook_secret: jivo-secret-0123456789}]}\n"))
	require.ErrorContains(t, err, "chat.platforms: lists 1 platform(s) but amocrm.base_url is empty")
}

func FuzzParse(f *testing.F) {
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", "crmlink.yaml"))
	if err == nil {
		f.Add(data)
	}
	f.Add([]byte("routing: {lookup_timeout: 1s}"))
	f.Add([]byte("managers: [{crm_user: -1}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Parse(b) // must not panic
	})
}

// A key an earlier version took and that no longer does anything must not stop an upgraded
// crmlink (and with it routing): it is ignored with a warning that names it and what took
// its place. Other errors keep their line numbers.
func TestRetiredKeyIsAWarning(t *testing.T) {
	cfg, err := Parse([]byte("queue:\n  max_attempts: 8\n  retry_for: 30m\n"))
	require.NoError(t, err)
	assert.Equal(t, []string{"line 2: queue.max_attempts is no longer used and is ignored: failing events are now retried for queue.retry_for (default 2h) instead of a number of attempts; remove the key"}, cfg.Warnings())
	assert.Equal(t, 30*time.Minute, cfg.Queue.RetryFor)

	_, err = Parse([]byte("queue:\n  max_attempts: 8\n  retry_for: 30s\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "queue.retry_for: is 30s")

	_, err = Parse([]byte("queue:\n  max_attempts: 8\n  workers: many\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "line 3")
}
