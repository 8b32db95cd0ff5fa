// Package config loads crmlink's one YAML file strictly (an unknown key is an error naming
// the key and its line), fills defaults in one place, takes secrets from the environment and
// validates the result with messages that name the key and what is allowed.
package config

import (
	"time"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/chatbridge/intake"
	"github.com/crmlink/crmlink/scenarios"
)

// Config is the whole crmlink configuration. Field comments are the reference; the example
// file examples/crmlink.yaml shows every key with its default.
type Config struct {
	Log      Log       `yaml:"log"`
	HTTP     HTTP      `yaml:"http"`
	DataDir  string    `yaml:"data_dir"`
	Redis    Redis     `yaml:"redis"`
	Cluster  Cluster   `yaml:"cluster"`
	Asterisk Asterisk  `yaml:"asterisk"`
	AGI      AGI       `yaml:"agi"`
	SIP      SIP       `yaml:"sip_redirect"`
	AmoCRM   AmoCRM    `yaml:"amocrm"`
	Routing  Routing   `yaml:"routing"`
	Managers []Manager `yaml:"managers"`
	// Scenarios say which CRM records calls create (scenarios).
	Scenarios scenarios.Config `yaml:"scenarios"`
	Queue     Queue            `yaml:"queue"`
	// RecordingURL is the link to a call's recording put on call notes; {linkedid} is
	// replaced by the call's id. Empty: no link.
	RecordingURL string `yaml:"recording_url"`
	// Recordings serves the calls' recordings itself, as mp3 at signed links on the notes.
	Recordings Recordings `yaml:"recordings"`
	// Chat is the chat side: chat platforms, responsible sync with amoCRM, chat users and
	// their roles, online-chat leads. Off while chat.platforms is empty.
	Chat Chat `yaml:"chat"`
	// ClickToCall is POST /v1/calls and the amoCRM widget: the manager's phones ring,
	// then the client.
	ClickToCall ClickToCall `yaml:"click_to_call"`
	// UI is the live page (/ui/): calls in progress, today's figures, health.
	UI UI `yaml:"ui"`

	// warnings are problems that do not stop crmlink (Warnings).
	warnings []string
}

// Warnings are the problems Load found that do not stop crmlink, one line each naming
// the key or file: check-config prints them, serve logs them.
func (c *Config) Warnings() []string { return c.warnings }

// Chat is the `chat:` section: chatbridge's configuration (platforms, sync directions,
// users and roles, the anti ping-pong guard) and the online-chat leads.
type Chat struct {
	chatbridge.Config `yaml:",inline"`
	// Leads turn online-chat webhooks (Jivo) into amoCRM contacts and deals.
	Leads intake.Config `yaml:"leads"`
}

// Enabled reports whether any chat platform is configured.
func (c Chat) Enabled() bool { return len(c.Platforms) > 0 }

// Queue is the durable event queue between call outcomes and CRM writes: Redis Streams
// when redis.addrs is set, files under data_dir otherwise.
type Queue struct {
	// RetryFor is how long a failing event is retried (backoff doubling from 1 s to 5 min)
	// before it goes to the dead-letter list (GET /v1/queue/dead): it should outlast an
	// amoCRM outage, so that nothing needs a replay after one.
	RetryFor time.Duration `yaml:"retry_for"`
	// Workers process events in parallel; one client's events stay in order.
	Workers int `yaml:"workers"`
	// Consumer names this instance in the Redis consumer group; empty: the host name. A
	// name that survives a restart lets the restarted instance resume its unfinished
	// events at once; give each instance sharing one Redis its own name.
	Consumer string `yaml:"consumer"`
	// WaitReplicas is how many Redis replicas must hold an event before its sender is
	// answered (Redis WAIT); with Sentinel set 1, so that a failover loses no accepted
	// event. The event path's state (plans, step records) waits for as many before the
	// CRM write it guards. 0: the master's answer is enough.
	WaitReplicas int `yaml:"wait_replicas"`
}

// UI is the `ui:` section: the live page's day.
type UI struct {
	// Timezone is the IANA zone whose midnight starts a new day of the page's figures
	// ("Europe/Moscow"); empty: the server's local zone.
	Timezone string `yaml:"timezone"`
}

// Location is the zone of UI.Timezone (validated: an error here is a bug).
func (u UI) Location() (*time.Location, error) { return time.LoadLocation(u.Timezone) }

// Log sets the logger.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // auto (console on a terminal, JSON otherwise), json, console
}

// HTTP is the API listener (/healthz, /metrics, /v1/...).
type HTTP struct {
	Listen string `yaml:"listen"`
	// Token is the admin bearer token (Authorization: Bearer): every /v1 endpoint,
	// state-changing ones included. Env CRMLINK_HTTP_TOKEN.
	Token string `yaml:"token"`
	// ReadToken is the viewer's bearer token: the endpoints that reveal client data
	// (/v1/route, /v1/chat-access, /v1/queue/dead, ...) but no change. Env
	// CRMLINK_HTTP_READ_TOKEN.
	ReadToken string `yaml:"read_token"`
}

// Redis holds shared state and the event queue; without addrs crmlink keeps state in process.
type Redis struct {
	Addrs      []string `yaml:"addrs"`
	MasterName string   `yaml:"master_name"` // Sentinel master; empty for a single server (Redis Cluster is not supported)
	Username   string   `yaml:"username"`
	Password   string   `yaml:"password"` // env CRMLINK_REDIS_PASSWORD
	DB         int      `yaml:"db"`
}

// Enabled reports whether Redis is configured.
func (r Redis) Enabled() bool { return len(r.Addrs) > 0 }

// Cluster is this instance's place among several crmlink instances sharing one Redis
// (docs/deploy.md, "Running more than one").
type Cluster struct {
	// Peers are the other instances' HTTP API addresses ("http://crmlink-2:8080"). While
	// this instance cannot reach Redis and a peer answers its /healthz with Redis
	// connected, this instance steps aside: its /healthz answers 503, so the load balancer
	// sends calls to the peer. Alone, or with Redis down for every instance, it keeps
	// routing from amoCRM. Empty: a single instance, which never steps aside.
	Peers []string `yaml:"peers"`
}

// Asterisk is the ARI connection and where calls go when crmlink does not route them.
type Asterisk struct {
	ARI      ARI      `yaml:"ari"`
	Fallback Fallback `yaml:"fallback"`
	Observer Observer `yaml:"observer"`
}

// Observer follows every call on the Asterisk over the ARI connection of asterisk.ari,
// however it reaches the managers, and records it in the CRM.
type Observer struct {
	Enabled bool `yaml:"enabled"`
	// Application is the observer's own ARI application; it takes no calls.
	Application string `yaml:"application"`
	// OfficeEndpoints are office phones besides the managers' (an operator desk): calls
	// between office phones are internal and record nothing.
	OfficeEndpoints []string `yaml:"office_endpoints"`
	// Credit is which manager a call on which several talked is credited to in the CRM
	// (the call note's responsible): first_answered or last_answered.
	Credit string `yaml:"credit"`
	// Inbound: the Asterisks connect the observer's application to crmlink over ARI
	// Outbound WebSockets (ari.conf outbound_websocket, apps = the application) on the
	// asterisk.ari.inbound listener, instead of crmlink connecting to asterisk.ari.url:
	// several Asterisks, and whichever instance behind a balancer is alive.
	Inbound bool `yaml:"inbound"`
}

// ARI is the Stasis controller's connection.
type ARI struct {
	Enabled     bool   `yaml:"enabled"`
	URL         string `yaml:"url"`
	WSURL       string `yaml:"ws_url"`
	Username    string `yaml:"username"`
	Password    string `yaml:"password"` // env CRMLINK_ARI_PASSWORD
	Application string `yaml:"application"`
	// Transport carries the controller's REST requests: auto (over the event websocket
	// where Asterisk answers one there at connect, else HTTP), websocket or http.
	Transport string `yaml:"transport"`
	// Ringing is who rings the owner's phones: dialplan (the controller continues the call
	// in DialContext, whose Dial() rings them; the bridge way when the dialplan lacks it) or
	// bridge (the controller originates and bridges the first to answer).
	Ringing     string `yaml:"ringing"`
	DialContext string `yaml:"dial_context"`
	// Inbound accepts Asterisk's ARI Outbound WebSockets for the same application.
	Inbound ARIInbound `yaml:"inbound"`
}

// ARIInbound is the listener Asterisks connect their ARI Outbound WebSockets to (ari.conf
// type = outbound_websocket, websocket_client.conf; Asterisk 20.15, 21.10, 22.5 and later).
type ARIInbound struct {
	Enabled bool   `yaml:"enabled"`
	Listen  string `yaml:"listen"`
	// Username and Password are what Asterisk presents (websocket_client.conf).
	Username string `yaml:"username"`
	Password string `yaml:"password"` // env CRMLINK_ARI_INBOUND_PASSWORD
}

// Fallback is the dialplan location ("linked operation") a call continues at when it is
// not routed to a manager: a ring group, a queue, an IVR.
type Fallback struct {
	Context   string `yaml:"context"`
	Extension string `yaml:"extension"` // empty: the dialled number (${EXTEN})
	Priority  int    `yaml:"priority"`
}

// AGI is the FastAGI server.
type AGI struct {
	Enabled bool   `yaml:"enabled"`
	Listen  string `yaml:"listen"`
	// AllowedNetworks are the networks Asterisk may connect from (CIDR); a connection
	// from elsewhere is closed unanswered. FastAGI has no authentication of its own.
	AllowedNetworks []string `yaml:"allowed_networks"`
}

// SIP is the SIP redirect server answering INVITEs with 302.
type SIP struct {
	Enabled         bool     `yaml:"enabled"`
	Listen          string   `yaml:"listen"`
	AllowedNetworks []string `yaml:"allowed_networks"`
	// ContactTemplate turns a target endpoint into a Contact URI; {user} is the endpoint's
	// resource ("101" of PJSIP/101).
	ContactTemplate string `yaml:"contact_template"`
	FallbackContact string `yaml:"fallback_contact"`
}

// AmoCRM is the account crmlink reads owners from.
type AmoCRM struct {
	BaseURL   string  `yaml:"base_url"`
	Token     string  `yaml:"token"` // long-lived token; env CRMLINK_AMOCRM_TOKEN
	OAuth     OAuth   `yaml:"oauth"`
	RateLimit float64 `yaml:"rate_limit"` // requests per second for the whole account
	// CallReserve requests of every second are kept for call-path owner lookups: CRM
	// writes and the chat sync never take them.
	CallReserve    int           `yaml:"call_reserve"`
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// WebhookSecret authenticates amoCRM webhooks: it is the last path segment of the
	// webhook URL entered in amoCRM. Env CRMLINK_AMOCRM_WEBHOOK_SECRET.
	WebhookSecret string `yaml:"webhook_secret"`
	// CallCard shows the incoming-call card to the managers whose phones ring.
	CallCard CallCard `yaml:"call_card"`
}

// CallCard is amoCRM's incoming-call card (POST /api/v2/events): one request per ringing
// wave, after the call path's lookups and before CRM writes in the account's budget.
type CallCard struct {
	Enabled bool `yaml:"enabled"`
	// MaxDelay is how late after the ring a card is still sent; a card the budget cannot
	// send by then is dropped and counted (crmlink_call_cards_total{result="dropped"}).
	MaxDelay time.Duration `yaml:"max_delay"`
}

// Recordings makes the recordings of answered calls playable from amoCRM: the dialplan
// records them (MixMonitor), crmlink fetches each once, converts it to mp3, and links it
// from the call note at an HMAC-signed, expiring URL it serves under PublicURL.
type Recordings struct {
	Enabled bool `yaml:"enabled"`
	// PublicURL is where the managers' browsers reach crmlink's /v1/recordings/ (amoCRM's
	// player fetches the link from the browser): an https URL on a real account.
	PublicURL string `yaml:"public_url"`
	// Secret signs the links; env CRMLINK_RECORDINGS_SECRET. Changing it breaks the links
	// already on notes.
	Secret  string        `yaml:"secret"`
	LinkTTL time.Duration `yaml:"link_ttl"`
	// Source is where the recordings come from: ari (GET /ari/recordings/stored/{name}/file
	// over asterisk.ari, no shared disk) or dir (Dir, a directory shared with Asterisk).
	Source string `yaml:"source"`
	Dir    string `yaml:"dir"`
	// Name is the recording's name as the dialplan writes it, without extension.
	Name string `yaml:"name"`
	// FFmpeg converts to mp3 (Debian's ffmpeg package).
	FFmpeg string `yaml:"ffmpeg"`
	// Wait bounds how long after an answered call ended its recording may take to appear.
	Wait time.Duration `yaml:"wait"`
}

// Configured reports whether an amoCRM account is set up.
func (a AmoCRM) Configured() bool { return a.BaseURL != "" }

// OAuth is the OAuth2 alternative to a long-lived token.
type OAuth struct {
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"` // env CRMLINK_AMOCRM_CLIENT_SECRET
	RedirectURI  string `yaml:"redirect_uri"`
	TokenFile    string `yaml:"token_file"` // where access and refresh tokens are kept
}

// Routing decides the personal manager during call setup.
type Routing struct {
	Enabled bool `yaml:"enabled"`
	// LookupTimeout bounds the whole decision; past it the call goes to the fallback.
	LookupTimeout time.Duration `yaml:"lookup_timeout"`
	// RingTimeout is how long the owner's phones ring before the fallback.
	RingTimeout time.Duration `yaml:"ring_timeout"`
	CacheTTL    time.Duration `yaml:"cache_ttl"`
	NegativeTTL time.Duration `yaml:"negative_ttl"` // how long "not found" is remembered
	// Precedence orders whose responsible user is the owner: lead, contact, company.
	Precedence         []string `yaml:"precedence"`
	DefaultRegion      string   `yaml:"default_region"` // ISO country for numbers without a country code
	CheckManagerStatus bool     `yaml:"check_manager_status"`
}

// Manager maps a CRM user to the phones that ring for them and when they work.
type Manager struct {
	CRMUser   int64    `yaml:"crm_user"`
	Name      string   `yaml:"name"`
	Endpoints []string `yaml:"endpoints"` // Asterisk dial strings: PJSIP/101, PJSIP/79161234567@trunk
	Schedule  Schedule `yaml:"schedule"`
	// CallerID is the number a client sees when crmlink calls them for this manager
	// (click-to-call); empty leaves it to the outgoing context.
	CallerID string `yaml:"caller_id"`
	// TakesNewClients: online-chat leads of new clients are distributed to this manager
	// (round-robin within their chat.leads group, inside their schedule). Default true;
	// false keeps their existing clients but gives them no new ones.
	TakesNewClients *bool `yaml:"takes_new_clients"`
}

// TakesNew reports TakesNewClients with its default.
func (m Manager) TakesNew() bool { return m.TakesNewClients == nil || *m.TakesNewClients }

// Schedule is a manager's working time; empty means always.
type Schedule struct {
	Timezone string   `yaml:"timezone"` // IANA name, e.g. Europe/Moscow
	Days     []string `yaml:"days"`     // mon..sun
	Hours    string   `yaml:"hours"`    // "09:00-18:00"
	DaysOff  []string `yaml:"days_off"` // dates "2026-01-01"
}
