// Package adapters builds the chat platform adapters a `chat:` configuration names, so the
// server wires webhooks and the sync from one call: every configured platform gets a
// webhook reader, and platforms with sync: true are also registered with the Sync.
package adapters

import (
	"fmt"
	"net/http"
	"time"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/chatbridge/chatapp"
	"github.com/crmlink/crmlink/chatbridge/jivo"
	"github.com/crmlink/crmlink/chatbridge/wazzup"
)

// Options are shared by the adapters.
type Options struct {
	// HTTPClient sends API requests (default a plain client); Timeout bounds one request.
	HTTPClient *http.Client
	Timeout    time.Duration
	// Region reads numbers without a country code (default RU).
	Region string
	// Now stamps events that carry no time (default time.Now).
	Now func() time.Time
	// ChatAppTokens is where ChatApp's token pair is kept (default in memory).
	ChatAppTokens func(chatbridge.PlatformConfig) chatapp.TokenStore
}

// Set is the adapters of one configuration.
type Set struct {
	// Inbound reads each configured platform's webhooks.
	Inbound map[chatbridge.PlatformName]chatbridge.Inbound
	// Synced are the platforms with sync: true.
	Synced []chatbridge.Platform
}

// Build makes the adapters of a validated configuration.
func Build(cfg chatbridge.Config, o Options) (Set, error) {
	set := Set{Inbound: map[chatbridge.PlatformName]chatbridge.Inbound{}}
	for i, p := range cfg.Platforms {
		var in chatbridge.Inbound
		var out chatbridge.Platform
		switch p.Platform {
		case chatbridge.Wazzup:
			c, err := wazzup.New(wazzup.Options{APIURL: p.APIURL, APIKey: p.APIKey, CRMKey: p.WebhookSecret,
				HTTPClient: o.HTTPClient, Timeout: o.Timeout, Region: o.Region, Now: o.Now})
			if err != nil {
				return Set{}, fmt.Errorf("chat.platforms[%d]: %w", i, err)
			}
			in, out = c, c
		case chatbridge.ChatApp:
			var tokens chatapp.TokenStore
			if o.ChatAppTokens != nil {
				tokens = o.ChatAppTokens(p)
			}
			c, err := chatapp.New(chatapp.Options{APIURL: p.APIURL, WebhookSecret: p.WebhookSecret, Licenses: p.Licenses,
				Credentials: chatapp.Credentials{Email: p.Email, Password: p.Password, AppID: p.AppID}, Tokens: tokens,
				Key: fmt.Sprintf("chat.platforms[%d]", i), HTTPClient: o.HTTPClient, Timeout: o.Timeout, Region: o.Region, Now: o.Now})
			if err != nil {
				return Set{}, fmt.Errorf("chat.platforms[%d]: %w", i, err)
			}
			in, out = c, c
		case chatbridge.Jivo:
			w, err := jivo.New(jivo.Options{Secret: p.WebhookSecret, Region: o.Region, Now: o.Now})
			if err != nil {
				return Set{}, fmt.Errorf("chat.platforms[%d]: %w", i, err)
			}
			in = w
		default:
			return Set{}, fmt.Errorf("chat.platforms[%d]: unknown platform %q", i, p.Platform)
		}
		if _, dup := set.Inbound[p.Platform]; dup {
			return Set{}, fmt.Errorf("chat.platforms[%d]: %s is configured twice", i, p.Platform)
		}
		set.Inbound[p.Platform] = in
		if p.Sync && out != nil {
			set.Synced = append(set.Synced, out)
		}
	}
	return set, nil
}

// SyncOptions registers the synced platforms with chatbridge.NewSync.
func (s Set) SyncOptions() []chatbridge.SyncOption {
	var out []chatbridge.SyncOption
	for _, p := range s.Synced {
		out = append(out, chatbridge.WithPlatform(p))
	}
	return out
}
