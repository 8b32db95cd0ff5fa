package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/crm/amocrm"
	"github.com/crmlink/crmlink/internal/config"
	"github.com/crmlink/crmlink/pbx/ari"
	"github.com/crmlink/crmlink/routing"
)

// parts are the wired components shared by serve and route.
type parts struct {
	redis   redis.UniversalClient
	crm     *amocrm.Client
	router  *routing.Router // nil without a CRM
	decider routing.Decider
	ari     *ari.Controller // nil when ARI is disabled
}

func (p *parts) close() {
	if p.redis != nil {
		_ = p.redis.Close()
	}
}

// build wires configuration into components. Only cmd knows concrete types.
func build(cfg *config.Config, log zerolog.Logger) (*parts, error) {
	p := &parts{}
	// The controller asks the router, and the router asks the controller whether phones
	// are online: the controller's decider is bound once both exist.
	var bound routing.Decider
	if cfg.Redis.Enabled() {
		p.redis = redis.NewUniversalClient(&redis.UniversalOptions{
			Addrs: cfg.Redis.Addrs, MasterName: cfg.Redis.MasterName,
			Username: cfg.Redis.Username, Password: cfg.Redis.Password, DB: cfg.Redis.DB,
		})
	}

	opts := routing.OptionsFromConfig(cfg.Routing, cfg.Managers)
	opts.Logger = log
	if p.redis != nil {
		opts.Cache = routing.NewRedisCache(p.redis, routing.DefaultRedisPrefix)
	}
	if cfg.AmoCRM.Configured() {
		ao := amocrm.Options{
			BaseURL:        cfg.AmoCRM.BaseURL,
			Token:          cfg.AmoCRM.Token,
			RateLimit:      cfg.AmoCRM.RateLimit,
			RequestTimeout: cfg.AmoCRM.RequestTimeout,
			Region:         cfg.Routing.DefaultRegion,
			Logger:         log,
		}
		if o := cfg.AmoCRM.OAuth; o.ClientID != "" {
			tf := o.TokenFile
			if !filepath.IsAbs(tf) {
				tf = filepath.Join(cfg.DataDir, tf)
			}
			ao.OAuth = &amocrm.OAuth{ClientID: o.ClientID, ClientSecret: o.ClientSecret, RedirectURI: o.RedirectURI, TokenFile: tf}
		}
		c, err := amocrm.New(ao)
		if err != nil {
			p.close()
			return nil, fmt.Errorf("amocrm: %w", err)
		}
		p.crm = c
		opts.Directory = c.CallPath()
	}

	if cfg.Asterisk.ARI.Enabled {
		a := cfg.Asterisk.ARI
		ctl, err := ari.New(ari.Options{
			URL: a.URL, WSURL: a.WSURL, Username: a.Username, Password: a.Password, Application: a.Application,
			Decider: routing.DeciderFunc(func(ctx context.Context, c routing.Call) routing.Decision {
				return bound.Decide(ctx, c)
			}),
			FallbackContext:   cfg.Asterisk.Fallback.Context,
			FallbackExtension: cfg.Asterisk.Fallback.Extension,
			FallbackPriority:  cfg.Asterisk.Fallback.Priority,
			LookupTimeout:     cfg.Routing.LookupTimeout,
			RingTimeout:       cfg.Routing.RingTimeout,
			Logger:            log,
		})
		if err != nil {
			p.close()
			return nil, err
		}
		p.ari = ctl
		opts.Presence = ctl
	}

	r, err := routing.New(opts)
	if err != nil {
		p.close()
		return nil, fmt.Errorf("routing: %w", err)
	}
	p.router, p.decider, bound = r, r, r
	return p, nil
}
