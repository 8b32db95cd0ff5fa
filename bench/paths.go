package bench

import "time"

// Caller sets.
const (
	callersCached  = "cached"
	callersIndexed = "indexed"
	callersCold    = "cold"
)

// PathSpec is one way a call is set up, driven the same way as every other.
type PathSpec struct {
	Name  string
	Title string
	Via   string // what carries the call: asterisk, ari, agi, sip-redirect
	// Service is the number dialled (the extension in asterisk-conf/extensions.conf).
	Service string
	// Redirect sends sipp straight to crmlink's SIP redirect server, expecting 302.
	Redirect bool
	// Curl: the dialplan asks crmlink's GET /v1/route with CURL() (crmlink on
	// benchCurlPort).
	Curl    bool
	Crmlink bool
	AGI     bool
	Redis   bool
	Callers string
	// Transport and Ringing are crmlink's asterisk.ari.transport and .ringing for the
	// ARI paths (auto and dialplan when empty).
	Transport, Ringing string
	// Observer turns crmlink's call observer on (asterisk.observer): it records every call
	// on the Asterisk, whatever routed it.
	Observer bool
	// CRMRate is the amoCRM budget, requests/s, in the sandbox and in crmlink alike.
	CRMRate int
	// RateCap bounds the search; Search, when set, is a smaller step budget than the plan's
	// (for the variants that are there to compare with a path measured in full).
	RateCap int
	Search  int
	Growth  float64 // the search's growth factor, when not the plan's
	// QuietWait is how long each step waits for other work on the machine to calm down
	// (default 10 s, 3 s in quick mode): longer for the baseline every ratio is taken to.
	QuietWait time.Duration
	// Census also counts crmlink's ARI requests per call, in a separate slow run.
	Census bool
	// TwinArgs runs the path on crmlink-pprof (`crmlink serve` with a profiler) with these
	// extra flags instead of bin/crmlink: experiments with settings crmlink lacks.
	TwinArgs []string
	// Profile adds a profiling run (Options.Profile).
	Profile bool
	Quick   bool // part of the quick mode
	Note    string
}

// Paths are every path `make bench` measures, the baseline first: the ratios are to it.
func Paths() []PathSpec {
	return []PathSpec{
		{Name: "baseline", Title: "Asterisk static Dial (no crmlink)", Via: "asterisk", Service: "500", RateCap: 1000, Quick: true, QuietWait: 20 * time.Second,
			Note: "5XX: Dial(PJSIP/bench-mgr1) in the dialplan."},
		{Name: "baseline-observed", Title: "Asterisk static Dial, crmlink observing", Via: "asterisk", Service: "500", Crmlink: true, Observer: true,
			Callers: callersCached, CRMRate: 7, RateCap: 1000, Quick: true,
			Note: "The baseline's calls with crmlink connected and its call observer on (asterisk.observer, application " + benchObserverApp + "): every call is followed over ARI and becomes a call outcome in crmlink's event queue (a call note in the sandbox). Its ratio to the baseline is the cost of observing."},
		{Name: "ari-cached", Title: "crmlink ARI, owner cached", Via: "ari", Service: "611", Crmlink: true, Callers: callersCached,
			CRMRate: 7, RateCap: 1000, Census: true, Profile: true, Quick: true,
			Note: "61X: Stasis(crmlink-bench); crmlink answers the routing question, writes CRMLINK_DIAL and the decision in one request and continues the call in [bench-dial], whose Dial() rings the owner's phone (asterisk.ari.ringing: dialplan); REST over the event websocket (transport auto on Asterisk 22.10); owner in the in-process cache."},
		{Name: "stasis-floor", Title: "Stasis hop alone (no crmlink)", Via: "ari", Service: "611", Crmlink: true,
			TwinArgs: []string{"--floor", "vars"}, CRMRate: 7, RateCap: 1000, Search: 4,
			Note: "61X with the least an ARI application can do in place of crmlink (crmlink-pprof --floor): StasisStart only through the event filter, then over the event websocket one request setting the dial variables and the continue into [bench-dial]; no decision, no following. What the Stasis hop itself costs Asterisk."},
		{Name: "stasis-floor-follow", Title: "Stasis hop, channel followed (no crmlink)", Via: "ari", Service: "611", Crmlink: true,
			TwinArgs: []string{"--floor", "follow,vars"}, CRMRate: 7, RateCap: 1000, Search: 4,
			Note: "As stasis-floor with the channel subscribed before the continue, as crmlink's controller follows it (the events still filtered out): what following costs Asterisk."},
		{Name: "stasis-floor-unfiltered", Title: "Stasis hop, channel followed, no event filter (no crmlink)", Via: "ari", Service: "611", Crmlink: true,
			TwinArgs: []string{"--floor", "follow,vars,nofilter"}, CRMRate: 7, RateCap: 1000, Search: 1,
			Note: "As stasis-floor-follow with no event filter: every event Asterisk sends is received and counted (its log's last line), to see what following a call makes Asterisk build."},
		{Name: "ari-cached-redis", Title: "crmlink ARI, owner cached in Redis", Via: "ari", Service: "611", Crmlink: true, Redis: true,
			Callers: callersCached, CRMRate: 7, RateCap: 1000, Quick: true,
			Note: "As ari-cached with the owner cache in the rig's Redis (127.0.0.1:6390, db 0)."},
		{Name: "ari-cached-bridge", Title: "crmlink ARI bridging, owner cached", Via: "ari", Service: "611", Crmlink: true, Callers: callersCached,
			Ringing: "bridge", CRMRate: 7, RateCap: 1000, Census: true, Quick: true,
			Note: "As ari-cached with asterisk.ari.ringing: bridge: crmlink originates a leg to the owner's phone and bridges it with the caller; REST over the event websocket."},
		{Name: "ari-cached-bridge-http", Title: "crmlink ARI bridging over HTTP, owner cached", Via: "ari", Service: "611", Crmlink: true, Callers: callersCached,
			Ringing: "bridge", Transport: "http", CRMRate: 7, RateCap: 1000, Search: 3,
			Note: "As ari-cached-bridge with asterisk.ari.transport: http: every REST request an HTTP request (what crmlink did before the websocket transport)."},
		{Name: "ari-cached-http", Title: "crmlink ARI over HTTP, owner cached", Via: "ari", Service: "611", Crmlink: true, Callers: callersCached,
			Transport: "http", CRMRate: 7, RateCap: 1000, Search: 3,
			Note: "As ari-cached with asterisk.ari.transport: http: what an Asterisk without ARI REST over WebSocket (before 20.14, 21.9, 22.4) gets."},
		{Name: "ari-indexed", Title: "crmlink ARI, owner from webhook index", Via: "ari", Service: "611", Crmlink: true, Callers: callersIndexed,
			CRMRate: 7, RateCap: 1000, Search: 2,
			Note: "Owners moved to manager 2 by amoCRM webhooks (POST /_sandbox/responsible) before the calls: Source index."},
		{Name: "ari-cold", Title: "crmlink ARI, cold (amoCRM 50 ms, 7 req/s)", Via: "ari", Service: "611", Crmlink: true, Callers: callersCold,
			CRMRate: 7, RateCap: 1000, Quick: true,
			Note: "Every call a new number: a live lookup of contact and deal (2 requests, 50 ms each) under amoCRM's 7 requests/s."},
		{Name: "ari-cold-crm50", Title: "crmlink ARI, cold, CRM budget 50 req/s", Via: "ari", Service: "611", Crmlink: true, Callers: callersCold,
			CRMRate: 50, RateCap: 1000, Search: 4,
			Note: "As ari-cold with the budget raised to 50 requests/s in the sandbox and crmlink (crmlink's configuration maximum): not a real amoCRM account."},
		{Name: "agi-cached", Title: "crmlink FastAGI, owner cached", Via: "agi", Service: "621", Crmlink: true, AGI: true, Callers: callersCached,
			CRMRate: 7, RateCap: 1000, Profile: true, Quick: true,
			Note: "62X: AGI(agi://127.0.0.1:4583/route) sets CRMLINK_DIAL, the dialplan dials it."},
		{Name: "curl-cached", Title: "dialplan CURL() to crmlink's HTTP decision, owner cached", Via: "curl", Service: "631", Crmlink: true, Curl: true,
			Callers: callersCached, CRMRate: 7, RateCap: 1000, Quick: true,
			Note: "63X: what asterlink/Itgrix-style setups wire: CURL(http://127.0.0.1:4584/v1/route?number=...) with the read token, JSON_DECODE() of result and targets, then Dial() of the owner's phone; crmlink only answers HTTP. /v1/route is crmlink's inquiry endpoint, so these decisions are not in crmlink_route_decisions_total (no fallback count)."},
		{Name: "redirect", Title: "crmlink SIP redirect alone (302)", Via: "sip-redirect", Service: "600", Redirect: true, Crmlink: true,
			Callers: callersCached, CRMRate: 7, RateCap: 3000, Growth: 2, Quick: true,
			Note: "sipp straight against crmlink's redirect listener: INVITE to 302, then ACK; no Asterisk and no answer in the path, so its ratio to the baseline compares a decision with a whole call setup."},
	}
}
