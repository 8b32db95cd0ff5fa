package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/crmlink/crmlink/clicktocall"
)

// ClickToCall is POST /v1/calls and the amoCRM widget: a manager clicks a client's number,
// their phones ring, and once they answer Asterisk dials the client through Context.
type ClickToCall struct {
	Enabled bool `yaml:"enabled"`
	// KeySecret derives each manager's widget key (crmlink widget-key); empty: only
	// http.token may place calls. Env CRMLINK_CLICK_TO_CALL_KEY_SECRET.
	KeySecret string `yaml:"key_secret"`
	// Application is the ARI application that follows the calls placed (it takes none).
	Application string `yaml:"application"`
	// Context is where the manager's answered phone dials the client: the outgoing
	// context office phones dial out through.
	Context string `yaml:"context"`
	// AllowedOrigins are the web origins whose pages may call the endpoint from a browser
	// (CORS): the amoCRM account, e.g. https://example.amocrm.ru.
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// Defaults of click_to_call.
const (
	DefaultClickToCallApp     = "crmlink-calls"
	DefaultClickToCallContext = "crmlink-outgoing"
)

// reCallerID is a number a trunk presents: digits, an optional leading +.
var reCallerID = regexp.MustCompile(`^\+?[0-9]{3,20}$`)

func checkClickToCall(v *validator, c *Config) {
	for i, m := range c.Managers {
		if m.CallerID != "" && !reCallerID.MatchString(m.CallerID) {
			v.add(fmt.Sprintf("managers[%d].caller_id", i), "is %q; allowed: the number the client sees, 3 to 20 digits with an optional leading +, e.g. +74951234567", m.CallerID)
		}
	}
	k := c.ClickToCall
	if !k.Enabled {
		return
	}
	v.require("click_to_call.application", k.Application)
	switch {
	case strings.ContainsAny(k.Application, ", "):
		v.add("click_to_call.application", "is %q; one application name without commas or spaces", k.Application)
	case k.Application != "" && (k.Application == c.Asterisk.ARI.Application || k.Application == c.Asterisk.Observer.Application):
		v.add("click_to_call.application", "is %q, the name of asterisk.ari.application or asterisk.observer.application; click-to-call needs a name of its own", k.Application)
	}
	v.require("click_to_call.context", k.Context)
	if k.KeySecret != "" && len(k.KeySecret) < clicktocall.MinSecretLen {
		v.add("click_to_call.key_secret", "is %d characters; allowed: empty (http.token only) or at least %d random characters (e.g. openssl rand -hex 32)", len(k.KeySecret), clicktocall.MinSecretLen)
	}
	for i, o := range k.AllowedOrigins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			v.add(fmt.Sprintf("click_to_call.allowed_origins[%d]", i), "is %q; allowed: an origin scheme://host[:port] without a path, e.g. https://example.amocrm.ru", o)
		}
	}
}
