package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/pbx/ari"
	"github.com/crmlink/crmlink/pbx/sip"
	"github.com/crmlink/crmlink/routing"
)

// Validate returns every problem in cfg; nil when it is usable. It is the one check of a
// configuration: check-config, serve and reload all refuse exactly what it refuses, so each
// check serve's start-up would make (schedules, listen addresses, SIP URIs) is made here by
// the code that later uses the value. A new check is a function of the checks list.
func (c *Config) Validate() Errors {
	var v validator
	for _, check := range checks {
		check(&v, c)
	}
	return v.errs
}

// checks are Validate's parts, one per section of the file.
var checks = []func(*validator, *Config){
	checkBasics,
	checkCluster,
	checkAsterisk,
	checkFrontEnds,
	checkAmoCRM,
	checkCallCard,
	checkRecordings,
	checkRouting,
	checkManagers,
	checkScenariosAndQueue,
	checkChat,
	checkClickToCall,
	checkUI,
	checkExposure,
}

func checkUI(v *validator, c *Config) {
	if _, err := c.UI.Location(); err != nil {
		v.add("ui.timezone", "is %q: %v; allowed: an IANA time zone name such as Europe/Moscow or UTC, empty for the server's local zone", c.UI.Timezone, err)
	}
}

// checkExposure: listeners reachable from other hosts and what guards them (exposure.go).
func checkExposure(v *validator, c *Config) { c.validateExposure(v) }

func checkBasics(v *validator, c *Config) {
	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "auto", "json", "console")
	v.hostPort("http.listen", c.HTTP.Listen)
	v.require("data_dir", c.DataDir)
	for i, a := range c.Redis.Addrs {
		v.hostPort(fmt.Sprintf("redis.addrs[%d]", i), a)
	}
	if c.Redis.DB < 0 || c.Redis.DB > 15 {
		v.add("redis.db", "is %d; allowed: 0 to 15", c.Redis.DB)
	}
	if c.RecordingURL != "" {
		v.url("recording_url", strings.ReplaceAll(c.RecordingURL, "{linkedid}", "x"), "http", "https")
	}
}

func checkCluster(v *validator, c *Config) {
	for i, p := range c.Cluster.Peers {
		v.url(fmt.Sprintf("cluster.peers[%d]", i), p, "http", "https")
	}
	if c.Queue.WaitReplicas < 0 || c.Queue.WaitReplicas > 5 {
		v.add("queue.wait_replicas", "is %d; allowed: 0 (the master's answer is enough) to 5", c.Queue.WaitReplicas)
	} else if c.Queue.WaitReplicas > 0 && !c.Redis.Enabled() {
		v.add("queue.wait_replicas", "is %d but redis.addrs is empty; replicas are Redis's: set redis.addrs, or 0", c.Queue.WaitReplicas)
	}
	if len(c.Cluster.Peers) > 0 && !c.Redis.Enabled() {
		v.add("cluster.peers", "lists %d peers but redis.addrs is empty; instances share their work through Redis: set redis.addrs, or remove cluster.peers", len(c.Cluster.Peers))
	}
}

func checkAsterisk(v *validator, c *Config) {
	// The observer and click-to-call use the controller's ARI connection settings even
	// with it off; the inbound listener serves the same application.
	if a := c.Asterisk.ARI; a.Enabled || a.Inbound.Enabled || c.Asterisk.Observer.Enabled || c.ClickToCall.Enabled {
		v.url("asterisk.ari.url", a.URL, "http", "https")
		v.url("asterisk.ari.ws_url", a.WSURL, "ws", "wss")
		v.require("asterisk.ari.username", a.Username)
		v.require("asterisk.ari.application", a.Application)
		if strings.ContainsAny(a.Application, ", ") {
			v.add("asterisk.ari.application", "is %q; one application name without commas or spaces", a.Application)
		}
		v.oneOf("asterisk.ari.transport", a.Transport, ari.Transports...)
		v.oneOf("asterisk.ari.ringing", a.Ringing, ari.Ringings...)
		if a.Ringing == ari.RingDialplan && !reContext.MatchString(a.DialContext) {
			v.add("asterisk.ari.dial_context", "is %q; allowed: a dialplan context name (letters, digits, - and _), e.g. crmlink-dial", a.DialContext)
		}
	}
	if in := c.Asterisk.ARI.Inbound; in.Enabled {
		v.hostPort("asterisk.ari.inbound.listen", in.Listen)
		v.require("asterisk.ari.inbound.username", in.Username)
		if in.Password == "" {
			v.add("asterisk.ari.inbound.password", "is empty; allowed: the password of websocket_client.conf (env CRMLINK_ARI_INBOUND_PASSWORD): Asterisk must authenticate")
		}
	}
	if o := c.Asterisk.Observer; o.Enabled {
		v.require("asterisk.observer.application", o.Application)
		if strings.ContainsAny(o.Application, ", ") {
			v.add("asterisk.observer.application", "is %q; one application name without commas or spaces", o.Application)
		} else if o.Application == c.Asterisk.ARI.Application {
			v.add("asterisk.observer.application", "is %q, the name of asterisk.ari.application; the observer needs a name of its own", o.Application)
		}
		credits := make([]string, len(ari.Credits))
		for i, c := range ari.Credits {
			credits[i] = string(c)
		}
		v.oneOf("asterisk.observer.credit", o.Credit, credits...)
		if o.Inbound && !c.Asterisk.ARI.Inbound.Enabled {
			v.add("asterisk.observer.inbound", "is true but asterisk.ari.inbound.enabled is false; the Asterisks' connections for the observer arrive on that listener: enable it (listen, username, password), or set inbound to false")
		}
		for i, e := range o.OfficeEndpoints {
			if !reEndpoint.MatchString(e) {
				v.add(fmt.Sprintf("asterisk.observer.office_endpoints[%d]", i), "is %q; allowed: an Asterisk endpoint TECH/resource, e.g. PJSIP/100", e)
			}
		}
	}
	v.require("asterisk.fallback.context", c.Asterisk.Fallback.Context)
	if c.Asterisk.Fallback.Priority < 1 {
		v.add("asterisk.fallback.priority", "is %d; allowed: 1 or more", c.Asterisk.Fallback.Priority)
	}
}

// checkFrontEnds checks FastAGI and the SIP redirect server; the SIP URIs are checked by
// the parser the redirect server uses.
func checkFrontEnds(v *validator, c *Config) {
	if c.AGI.Enabled {
		v.hostPort("agi.listen", c.AGI.Listen)
	}
	if !c.SIP.Enabled {
		return
	}
	v.hostPort("sip_redirect.listen", c.SIP.Listen) // allowed_networks: checkExposure
	if err := sip.CheckContactTemplate(c.SIP.ContactTemplate); err != nil {
		v.add("sip_redirect.contact_template", "is %q; %v", c.SIP.ContactTemplate, err)
	}
	if c.SIP.FallbackContact != "" {
		if err := sip.CheckFallbackContact(c.SIP.FallbackContact); err != nil {
			v.add("sip_redirect.fallback_contact", "is %q; %v", c.SIP.FallbackContact, err)
		}
	}
}

func checkAmoCRM(v *validator, c *Config) {
	if !c.AmoCRM.Configured() {
		return
	}
	v.url("amocrm.base_url", c.AmoCRM.BaseURL, "http", "https")
	o := c.AmoCRM.OAuth
	switch {
	case c.AmoCRM.Token != "" && o.ClientID != "":
		v.add("amocrm.token", "and amocrm.oauth are both set; use a long-lived token or OAuth, not both")
	case c.AmoCRM.Token == "" && o.ClientID == "":
		v.add("amocrm.token", "is empty; set a long-lived token (or CRMLINK_AMOCRM_TOKEN) or configure amocrm.oauth")
	case o.ClientID != "":
		v.require("amocrm.oauth.client_secret", o.ClientSecret)
		v.require("amocrm.oauth.token_file", o.TokenFile)
	}
	// The client refuses less than one request an hour; 0.001/s is the lowest round value above.
	if !(c.AmoCRM.RateLimit >= 0.001 && c.AmoCRM.RateLimit <= 50) {
		v.add("amocrm.rate_limit", "is %g; allowed: 0.001 to 50 requests per second (amoCRM allows 7)", c.AmoCRM.RateLimit)
	}
	if r := c.AmoCRM.CallReserve; r < 0 || (c.AmoCRM.RateLimit >= 1 && float64(r) >= c.AmoCRM.RateLimit) {
		v.add("amocrm.call_reserve", "is %d; allowed: 0 to one less than amocrm.rate_limit (%g), so that CRM writes keep at least one request a second", r, c.AmoCRM.RateLimit)
	}
	v.positive("amocrm.request_timeout", c.AmoCRM.RequestTimeout)
}

func checkCallCard(v *validator, c *Config) {
	cc := c.AmoCRM.CallCard
	if !cc.Enabled {
		return
	}
	if !c.AmoCRM.Configured() {
		v.add("amocrm.call_card.enabled", "is true but no amoCRM account is configured (amocrm.base_url); set one or turn the card off")
	}
	if cc.MaxDelay < 100*time.Millisecond || cc.MaxDelay > 10*time.Second {
		v.add("amocrm.call_card.max_delay", "is %v; allowed: 100ms to 10s (a card later than the ring by more is no use)", cc.MaxDelay)
	}
}

func checkRecordings(v *validator, c *Config) {
	r := c.Recordings
	if !r.Enabled {
		return
	}
	if c.RecordingURL != "" {
		v.add("recording_url", "and recordings.enabled are both set; crmlink serves the recordings itself, so leave recording_url empty")
	}
	v.require("recordings.public_url", r.PublicURL)
	if r.PublicURL != "" {
		v.url("recordings.public_url", r.PublicURL, "http", "https")
	}
	if len(r.Secret) < 16 {
		v.add("recordings.secret", "has %d characters; allowed: at least 16 (set it, or CRMLINK_RECORDINGS_SECRET, to a random string)", len(r.Secret))
	}
	if r.LinkTTL < time.Hour {
		v.add("recordings.link_ttl", "is %v; allowed: 1h or more (a note's link must play for as long as anybody reads the note)", r.LinkTTL)
	}
	switch r.Source {
	case "ari":
		if c.Asterisk.ARI.URL == "" {
			v.add("recordings.source", "is ari but asterisk.ari.url is empty")
		}
	case "dir":
		v.require("recordings.dir", r.Dir)
	default:
		v.add("recordings.source", "is %q; allowed: ari (download over ARI), dir (a directory shared with Asterisk)", r.Source)
	}
	if !strings.Contains(r.Name, "{linkedid}") || strings.ContainsAny(r.Name, `/\`) {
		v.add("recordings.name", "is %q; allowed: a file name without extension or directory that contains {linkedid}, as the dialplan's MixMonitor writes it", r.Name)
	}
	v.require("recordings.ffmpeg", r.FFmpeg)
	if r.Wait < 0 || r.Wait > time.Minute {
		v.add("recordings.wait", "is %v; allowed: 0 to 1m", r.Wait)
	}
}

func checkRouting(v *validator, c *Config) {
	r := c.Routing
	if r.LookupTimeout < 50*time.Millisecond || r.LookupTimeout > 30*time.Second {
		v.add("routing.lookup_timeout", "is %s; allowed: 50ms to 30s", r.LookupTimeout)
	}
	if r.RingTimeout < time.Second || r.RingTimeout > 10*time.Minute {
		v.add("routing.ring_timeout", "is %s; allowed: 1s to 10m", r.RingTimeout)
	}
	v.positive("routing.cache_ttl", r.CacheTTL)
	v.positive("routing.negative_ttl", r.NegativeTTL)
	seen := map[string]bool{}
	for i, p := range r.Precedence {
		key := fmt.Sprintf("routing.precedence[%d]", i)
		v.oneOf(key, p, "lead", "contact", "company")
		if seen[p] {
			v.add(key, "repeats %q; each of lead, contact, company at most once", p)
		}
		seen[p] = true
	}
	if len(r.Precedence) == 0 {
		v.add("routing.precedence", "is empty; list at least one of lead, contact, company")
	}
	if !reRegion.MatchString(r.DefaultRegion) {
		v.add("routing.default_region", "is %q; allowed: a two-letter ISO country code such as RU", r.DefaultRegion)
	}
}

func checkManagers(v *validator, c *Config) {
	users := map[int64]int{}
	for i, m := range c.Managers {
		key := fmt.Sprintf("managers[%d]", i)
		if m.CRMUser <= 0 {
			v.add(key+".crm_user", "is %d; allowed: the amoCRM user id, a positive number", m.CRMUser)
		} else if j, dup := users[m.CRMUser]; dup {
			v.add(key+".crm_user", "%d is already mapped in managers[%d]; map each CRM user once", m.CRMUser, j)
		}
		users[m.CRMUser] = i
		if len(m.Endpoints) == 0 {
			v.add(key+".endpoints", "is empty; list at least one dial string such as PJSIP/101")
		}
		for j, e := range m.Endpoints {
			if !reEndpoint.MatchString(e) {
				v.add(fmt.Sprintf("%s.endpoints[%d]", key, j), "is %q; allowed: an Asterisk dial string TECH/resource, e.g. PJSIP/101 or PJSIP/79161234567@trunk", e)
			}
		}
		checkSchedule(v, key+".schedule", m.Schedule)
	}
}

// checkSchedule runs the router's own schedule parser, so that what passes here is what
// routes, one field at a time so that every wrong field is reported (they are independent).
func checkSchedule(v *validator, key string, s Schedule) {
	for _, part := range []routing.ScheduleSpec{{Timezone: s.Timezone}, {Days: s.Days}, {Hours: s.Hours}, {DaysOff: s.DaysOff}} {
		if _, err := routing.ParseSchedule(part); err != nil {
			v.errs = append(v.errs, key+"."+err.Error())
		}
	}
}

func checkScenariosAndQueue(v *validator, c *Config) {
	v.errs = append(v.errs, c.Scenarios.Validate()...)
	// Over three days a retry could outlive the rules engine's memory of what it wrote.
	if c.Queue.RetryFor < time.Minute || c.Queue.RetryFor > 72*time.Hour {
		v.add("queue.retry_for", "is %s; allowed: 1m to 72h (how long a failing event is retried before the dead-letter list, e.g. 2h)", c.Queue.RetryFor)
	}
	if c.Queue.Workers < 1 || c.Queue.Workers > 1000 {
		v.add("queue.workers", "is %d; allowed: 1 to 1000", c.Queue.Workers)
	}
}

func checkChat(v *validator, c *Config) {
	if c.Chat.Enabled() && !c.AmoCRM.Configured() {
		v.add("chat.platforms", "lists %d platform(s) but amocrm.base_url is empty; responsible sync and online-chat leads read and write amoCRM: configure amocrm", len(c.Chat.Platforms))
	}
	v.errs = append(v.errs, c.Chat.Validate()...)
	v.errs = append(v.errs, c.Chat.Leads.Validate()...)
	if c.Chat.Leads.Enabled && !slices.ContainsFunc(c.Chat.Platforms, func(p chatbridge.PlatformConfig) bool { return p.Platform == chatbridge.Jivo }) {
		v.add("chat.leads.enabled", "is true but no jivo platform is configured under chat.platforms; online-chat leads come from Jivo's webhooks")
	}
	managers := map[int64]bool{}
	for _, m := range c.Managers {
		managers[m.CRMUser] = true
	}
	for i, g := range c.Chat.Leads.Groups {
		for j, u := range g.Managers {
			if !managers[int64(u)] {
				v.add(fmt.Sprintf("chat.leads.groups[%d].managers[%d]", i, j), "is %d, which is not under managers:; list each manager who takes new chat clients there (schedule, takes_new_clients)", u)
			}
		}
	}
}

var (
	reRegion   = regexp.MustCompile(`^[A-Z]{2}$`)
	reEndpoint = regexp.MustCompile(`^[A-Za-z]+/[A-Za-z0-9_.+\-]+(@[A-Za-z0-9_.\-]+)?$`)
	reContext  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,79}$`)
)

type validator struct{ errs Errors }

func (v *validator) add(key, format string, args ...any) {
	v.errs = append(v.errs, key+": "+fmt.Sprintf(format, args...))
}

func (v *validator) require(key, val string) {
	if strings.TrimSpace(val) == "" {
		v.add(key, "is empty; it is required")
	}
}

func (v *validator) oneOf(key, val string, allowed ...string) {
	for _, a := range allowed {
		if val == a {
			return
		}
	}
	v.add(key, "is %q; allowed: %s", val, strings.Join(allowed, ", "))
}

// hostPort takes a numeric port only: a service name ("http") would depend on the
// machine's /etc/services, and anything else fails only when serve listens.
func (v *validator) hostPort(key, val string) {
	_, port, err := net.SplitHostPort(val)
	if _, perr := strconv.ParseUint(port, 10, 16); err != nil || perr != nil {
		v.add(key, "is %q; allowed: host:port with a port number 0 to 65535, such as 127.0.0.1:8080", val)
	}
}

func (v *validator) url(key, val string, schemes ...string) {
	u, err := url.Parse(val)
	if err != nil || u.Host == "" {
		v.add(key, "is %q; allowed: an absolute %s URL", val, strings.Join(schemes, " or "))
		return
	}
	v.oneOf(key+" scheme", u.Scheme, schemes...)
}

func (v *validator) positive(key string, d time.Duration) {
	if d <= 0 {
		v.add(key, "is %s; allowed: a positive duration such as 30s or 6h", d)
	}
}
