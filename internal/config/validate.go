package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/crmlink/crmlink/chatbridge"
)

// Validate returns every problem in cfg; nil when it is usable.
func (c *Config) Validate() Errors {
	var v validator
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

	if a := c.Asterisk.ARI; a.Enabled {
		v.url("asterisk.ari.url", a.URL, "http", "https")
		v.url("asterisk.ari.ws_url", a.WSURL, "ws", "wss")
		v.require("asterisk.ari.username", a.Username)
		v.require("asterisk.ari.application", a.Application)
		if strings.ContainsAny(a.Application, ", ") {
			v.add("asterisk.ari.application", "is %q; one application name without commas or spaces", a.Application)
		}
	}
	v.require("asterisk.fallback.context", c.Asterisk.Fallback.Context)
	if c.Asterisk.Fallback.Priority < 1 {
		v.add("asterisk.fallback.priority", "is %d; allowed: 1 or more", c.Asterisk.Fallback.Priority)
	}
	if c.AGI.Enabled {
		v.hostPort("agi.listen", c.AGI.Listen)
	}
	if c.SIP.Enabled {
		v.hostPort("sip_redirect.listen", c.SIP.Listen)
		if !strings.Contains(c.SIP.ContactTemplate, "{user}") {
			v.add("sip_redirect.contact_template", "is %q; it must contain {user}, e.g. sip:{user}@pbx.example:5060", c.SIP.ContactTemplate)
		}
		if c.SIP.FallbackContact != "" && !strings.HasPrefix(c.SIP.FallbackContact, "sip:") {
			v.add("sip_redirect.fallback_contact", "is %q; allowed: a sip: URI", c.SIP.FallbackContact)
		}
	}

	if c.AmoCRM.Configured() {
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
		if c.AmoCRM.RateLimit <= 0 || c.AmoCRM.RateLimit > 50 {
			v.add("amocrm.rate_limit", "is %g; allowed: more than 0 and at most 50 requests per second (amoCRM allows 7)", c.AmoCRM.RateLimit)
		}
		if r := c.AmoCRM.CallReserve; r < 0 || (c.AmoCRM.RateLimit >= 1 && float64(r) >= c.AmoCRM.RateLimit) {
			v.add("amocrm.call_reserve", "is %d; allowed: 0 to one less than amocrm.rate_limit (%g), so that CRM writes keep at least one request a second", r, c.AmoCRM.RateLimit)
		}
		v.positive("amocrm.request_timeout", c.AmoCRM.RequestTimeout)
	}

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
		validateSchedule(&v, key+".schedule", m.Schedule)
	}
	for _, msg := range c.Scenarios.Validate() {
		v.errs = append(v.errs, msg)
	}
	// Over three days a retry could outlive the rules engine's memory of what it wrote.
	if c.Queue.RetryFor < time.Minute || c.Queue.RetryFor > 72*time.Hour {
		v.add("queue.retry_for", "is %s; allowed: 1m to 72h (how long a failing event is retried before the dead-letter list, e.g. 2h)", c.Queue.RetryFor)
	}
	if c.Queue.Workers < 1 || c.Queue.Workers > 1000 {
		v.add("queue.workers", "is %d; allowed: 1 to 1000", c.Queue.Workers)
	}
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
	if c.RecordingURL != "" {
		v.url("recording_url", strings.ReplaceAll(c.RecordingURL, "{linkedid}", "x"), "http", "https")
	}
	c.validateExposure(&v)
	return v.errs
}

var (
	reRegion   = regexp.MustCompile(`^[A-Z]{2}$`)
	reEndpoint = regexp.MustCompile(`^[A-Za-z]+/[A-Za-z0-9_.+\-]+(@[A-Za-z0-9_.\-]+)?$`)
	reHours    = regexp.MustCompile(`^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$`)
	weekdays   = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
)

func validateSchedule(v *validator, key string, s Schedule) {
	if s.Timezone != "" {
		if _, err := time.LoadLocation(s.Timezone); err != nil {
			v.add(key+".timezone", "is %q; allowed: an IANA time zone such as Europe/Moscow", s.Timezone)
		}
	}
	for i, d := range s.Days {
		v.oneOf(fmt.Sprintf("%s.days[%d]", key, i), d, weekdays...)
	}
	if s.Hours != "" && !reHours.MatchString(s.Hours) {
		v.add(key+".hours", "is %q; allowed: HH:MM-HH:MM such as 09:00-18:00", s.Hours)
	}
	for i, d := range s.DaysOff {
		if _, err := time.Parse("2006-01-02", d); err != nil {
			v.add(fmt.Sprintf("%s.days_off[%d]", key, i), "is %q; allowed: a date YYYY-MM-DD", d)
		}
	}
}

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

func (v *validator) hostPort(key, val string) {
	if _, port, err := net.SplitHostPort(val); err != nil || port == "" {
		v.add(key, "is %q; allowed: host:port such as 127.0.0.1:8080", val)
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
