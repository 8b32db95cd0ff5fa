package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"
)

// demoConfig is the crmlink.yaml the demo runs crmlink with: every key not written here
// keeps crmlink's embedded default (examples/crmlink.yaml lists them), so ARI is on at
// http://127.0.0.1:8088/ari as application crmlink, the fallback is [crmlink-fallback],
// lookup_timeout is 1.5 s, there is no Redis (state in process, the event queue on disk
// under data_dir) and the scenarios are the defaults. Vera's schedule makes today a day
// off, whatever day the demo runs.
func demoConfig(httpPort int, dataDir, crmURL, token string, ui uiTokens, now time.Time) string {
	today := now.Format("2006-01-02")
	return fmt.Sprintf(`# Written by make demo: crmlink's embedded defaults plus these keys.
http:
  listen: 127.0.0.1:%d        # default 127.0.0.1:8080; a free port for the demo
  token: %s     # admin: the live page /ui/ with the replay button, every /v1 endpoint
  read_token: %s  # viewer: the live page, no changes
data_dir: %s
amocrm:
  base_url: %s   # the amoCRM sandbox (default: none, every call falls back "disabled")
  token: %s
  call_card: {enabled: true}   # default off: the incoming-call card while a phone rings
recordings:                    # default off: answered calls' recordings as mp3 on the notes
  enabled: true
  public_url: http://127.0.0.1:%d   # a real account needs https here (README)
  secret: demo-recordings-secret
routing:
  ring_timeout: 10s        # default 20s; shorter so the missed call does not take long
scenarios:
  missed:
    default_manager: 1004  # Gleb gets the call-backs and new clients nobody else owns
asterisk:
  observer: {enabled: true}   # records calls that do not pass Stasis(crmlink): click-to-call's
click_to_call:
  enabled: true            # POST /v1/calls: the manager's phone rings, then the client
  key_secret: %s
managers:
  - {crm_user: 1001, name: Anna, endpoints: [PJSIP/101], caller_id: "%s"}
  - {crm_user: 1002, name: Boris, endpoints: [PJSIP/102]}
  - crm_user: 1003
    name: Vera
    endpoints: [PJSIP/104]
    schedule: {timezone: UTC, days_off: ["%s"]}   # today: off schedule
  - {crm_user: 1004, name: Gleb, endpoints: [PJSIP/105]}
`, httpPort, ui.admin, ui.viewer, dataDir, crmURL, token, httpPort, demoKeySecret, annaCallerID, today)
}

// uiTokens are this run's tokens of the live page, made up per run.
type uiTokens struct{ admin, viewer string }

func newUITokens() uiTokens {
	return uiTokens{admin: "demo-admin-" + randomHex(6), viewer: "demo-viewer-" + randomHex(6)}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
