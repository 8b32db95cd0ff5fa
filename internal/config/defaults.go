package config

import (
	"time"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/chatbridge/intake"
	"github.com/crmlink/crmlink/internal/queue"
	"github.com/crmlink/crmlink/routing"
	"github.com/crmlink/crmlink/scenarios"
)

// Defaults, with the reason for each where it is not obvious.
const (
	DefaultHTTPListen = "127.0.0.1:8080"
	DefaultDataDir    = "/var/lib/crmlink"
	DefaultARIURL     = "http://127.0.0.1:8088/ari"
	DefaultARIWSURL   = "ws://127.0.0.1:8088/ari/events"
	DefaultARIApp     = "crmlink"
	// DefaultARIInboundListen is where Asterisks' ARI Outbound WebSockets connect
	// (asterisk.ari.inbound): loopback, like every listener.
	DefaultARIInboundListen = "127.0.0.1:8097"
	// DefaultObserverApp is the call observer's ARI application (asterisk.observer).
	DefaultObserverApp = "crmlink-observer"
	// DefaultObserverCredit credits a transferred call to whoever had the client last.
	DefaultObserverCredit = "last_answered"
	DefaultARIUser        = "crmlink"
	// DefaultARIPassword is the one in asterisk-conf/ari.conf, so that the sample PBX and
	// crmlink work together out of the box; serve warns while it is in use.
	DefaultARIPassword = "crmlink"
	DefaultFallback    = "crmlink-fallback"
	DefaultAGIListen   = "127.0.0.1:4573"
	DefaultSIPListen   = "127.0.0.1:5070"
	// DefaultRateLimit is amoCRM's documented limit per account.
	DefaultRateLimit = 7
	// DefaultCallReserve keeps 2 of amoCRM's 7 requests a second for cold owner lookups
	// (one lookup is 2 requests: the contact, its deals), so a burst of CRM writes never
	// delays a ringing call.
	DefaultCallReserve    = 2
	DefaultLookupTimeout  = routing.DefaultLookupTimeout
	DefaultRingTimeout    = 20 * time.Second
	DefaultCacheTTL       = routing.DefaultCacheTTL
	DefaultNegativeTTL    = routing.DefaultNegativeTTL
	DefaultRequestTimeout = 10 * time.Second
	// DefaultRecordingLinkTTL: a recording link on a note plays for 90 days.
	DefaultRecordingLinkTTL = 90 * 24 * time.Hour
	// DefaultRecordingWait: Asterisk closes a recording right after the call's hangup.
	DefaultRecordingWait = 5 * time.Second
	// DefaultCallCardMaxDelay: an incoming-call card not sent within 2 s of the ring is dropped.
	DefaultCallCardMaxDelay = 2 * time.Second
	DefaultRegion           = routing.DefaultRegion
	// DefaultQueueRetryFor rides out an amoCRM maintenance window (tens of minutes).
	DefaultQueueRetryFor = queue.DefaultRetryFor
	// DefaultQueueWorkers keeps enough outcomes in flight that their amoCRM writes fill the
	// shared requests of up to 50 entities (crm/amocrm/writer_batch.go).
	DefaultQueueWorkers = 400
)

// DefaultPrecedence is whose responsible user is the owner, first wins.
var DefaultPrecedence = routing.DefaultPrecedence

// Default returns the embedded configuration crmlink runs on without a file: no Redis, no
// CRM, every listener on loopback.
func Default() *Config {
	return &Config{
		Log:     Log{Level: "info", Format: "auto"},
		HTTP:    HTTP{Listen: DefaultHTTPListen},
		DataDir: DefaultDataDir,
		Asterisk: Asterisk{
			ARI: ARI{
				Enabled:     true,
				URL:         DefaultARIURL,
				WSURL:       DefaultARIWSURL,
				Username:    DefaultARIUser,
				Password:    DefaultARIPassword,
				Application: DefaultARIApp,
				Transport:   "auto",
				Ringing:     "dialplan",
				DialContext: "crmlink-dial",
				Inbound:     ARIInbound{Listen: DefaultARIInboundListen, Username: "asterisk"},
			},
			Fallback: Fallback{Context: DefaultFallback, Priority: 1},
			Observer: Observer{Application: DefaultObserverApp, Credit: DefaultObserverCredit},
		},
		AGI: AGI{Listen: DefaultAGIListen, AllowedNetworks: []string{"127.0.0.0/8"}},
		SIP: SIP{
			Listen:          DefaultSIPListen,
			AllowedNetworks: []string{"127.0.0.0/8"},
			ContactTemplate: "sip:{user}@127.0.0.1:5060",
		},
		Recordings: Recordings{LinkTTL: DefaultRecordingLinkTTL, Source: "ari", Name: "crmlink-{linkedid}",
			FFmpeg: "ffmpeg", Wait: DefaultRecordingWait},
		AmoCRM: AmoCRM{RateLimit: DefaultRateLimit, CallReserve: DefaultCallReserve, RequestTimeout: DefaultRequestTimeout,
			CallCard: CallCard{MaxDelay: DefaultCallCardMaxDelay}},
		Routing: Routing{
			Enabled:            true,
			LookupTimeout:      DefaultLookupTimeout,
			RingTimeout:        DefaultRingTimeout,
			CacheTTL:           DefaultCacheTTL,
			NegativeTTL:        DefaultNegativeTTL,
			Precedence:         append([]string(nil), DefaultPrecedence...),
			DefaultRegion:      DefaultRegion,
			CheckManagerStatus: true,
		},
		Scenarios: scenarios.Defaults(),
		Chat:      Chat{Config: chatbridge.Defaults(), Leads: intake.Defaults()},
		Queue:     Queue{RetryFor: DefaultQueueRetryFor, Workers: DefaultQueueWorkers},
		ClickToCall: ClickToCall{
			Application: DefaultClickToCallApp,
			Context:     DefaultClickToCallContext,
		},
	}
}
