// Package app wires crmlink's configuration into running parts (CRM client, router, PBX
// front ends, HTTP API) and runs them; only here and in cmd are concrete types chosen.
package app

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/board"
	"github.com/crmlink/crmlink/clicktocall"
	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/crm/amocrm"
	"github.com/crmlink/crmlink/events"
	"github.com/crmlink/crmlink/internal/config"
	"github.com/crmlink/crmlink/internal/httpapi"
	"github.com/crmlink/crmlink/pbx/agi"
	"github.com/crmlink/crmlink/pbx/ari"
	"github.com/crmlink/crmlink/pbx/recording"
	"github.com/crmlink/crmlink/pbx/sip"
	"github.com/crmlink/crmlink/routing"
	"github.com/crmlink/crmlink/routing/callcard"
)

// App is crmlink's running parts.
type App struct {
	cfg     *config.Config
	log     zerolog.Logger
	redis   redis.UniversalClient
	crm     *amocrm.Client
	Router  *routing.Router // the router built at start; CurrentRouter after a reload
	Decider routing.Decider
	ARI     *ari.Controller // nil when ARI is disabled
	// ARIInbound serves Asterisks' ARI Outbound WebSockets (nil unless asterisk.ari.inbound).
	ARIInbound *ari.Inbound
	AGI        *agi.Server // nil when FastAGI is disabled
	SIP        *sip.RedirectServer
	API        *httpapi.Server
	metrics    *metrics
	events     *eventPath
	outbox     *events.Outbox
	chat       *chat // nil without chat platforms
	// router is what every front end asks; Reload swaps the router inside it. routerBase
	// keeps the parts a reloaded router shares with the first one (CRM, cache, presence).
	// live is the configuration in effect (cfg with reloaded keys), under reloadMu.
	router     swappableRouter
	routerBase routing.Options
	reloadMu   sync.Mutex
	live       *config.Config
	// CallOutcomes, when set before Serve, also receives every finished call (tests).
	CallOutcomes func(routing.CallOutcome)

	// cluster decides whether this instance steps aside for a peer while cut off from
	// Redis; nil without cluster.peers.
	cluster *stepAside

	// Observer records the calls the controller does not handle; nil unless
	// asterisk.observer is enabled.
	Observer *ari.Observer
	// page is the live page's data: the calls in progress and today's figures.
	page *livePage
	// Cards shows the incoming-call card; nil unless amocrm.call_card is enabled.
	Cards *callcard.Cards
	// recordings are the call recordings crmlink serves; nil unless recordings.enabled.
	recordings *recording.Library
	// Dialer and Calls are click-to-call; nil unless click_to_call is enabled.
	Dialer *ari.Dialer
	Calls  *clicktocall.Service
}

// observeOutcome counts a finished call the PBX front end hands to the outbox, and shows
// it to CallOutcomes.
func (p *App) observeOutcome(o routing.CallOutcome) {
	p.metrics.outcomes.WithLabelValues(string(o.Direction), strconv.FormatBool(o.Answered), o.Asterisk).Inc()
	p.page.tally(board.TallyOf(o))
	if p.CallOutcomes != nil {
		p.CallOutcomes(o)
	}
}

// managerEndpoints maps each manager's endpoints to their CRM user.
func managerEndpoints(ms []config.Manager) map[string]crm.UserID {
	out := map[string]crm.UserID{}
	for _, m := range ms {
		for _, e := range m.Endpoints {
			out[e] = crm.UserID(m.CRMUser)
		}
	}
	return out
}

// managerNames maps the managers' CRM users to their names.
func managerNames(ms []config.Manager) map[crm.UserID]string {
	out := map[crm.UserID]string{}
	for _, m := range ms {
		out[crm.UserID(m.CRMUser)] = m.Name
	}
	return out
}

// Close releases what New opened.
func (p *App) Close() {
	if p.events != nil {
		if err := p.events.close(); err != nil {
			p.log.Error().Err(err).Msg("closing the event queue")
		}
	}
	if p.crm != nil {
		p.crm.Close()
	}
	if p.redis != nil {
		_ = p.redis.Close()
	}
}

// New wires the configuration into components; Run starts them.
func New(cfg *config.Config, log zerolog.Logger) (*App, error) {
	p := &App{cfg: cfg, live: cfg, log: log, metrics: newMetrics()}
	// The front ends hand finished calls straight to the event path; it stores them once
	// newEvents opens it (never without a CRM).
	p.outbox = events.NewOutbox(p.observeOutcome, log)
	// The controller asks the router, and the router asks the controller whether phones
	// are online: the controller's decider is bound once both exist.
	var bound routing.Decider
	if cfg.Redis.Enabled() {
		// Deadlines of the caller bound every command, retries and dials included: a call
		// waits on the owner cache for milliseconds (routing's guard), and a dead Redis must
		// not keep the pool's connections for the default 3 s read timeout times retries.
		p.redis = redis.NewUniversalClient(&redis.UniversalOptions{
			Addrs: cfg.Redis.Addrs, MasterName: cfg.Redis.MasterName,
			Username: cfg.Redis.Username, Password: cfg.Redis.Password, DB: cfg.Redis.DB,
			ContextTimeoutEnabled: true,
		})
		if len(cfg.Cluster.Peers) > 0 {
			p.cluster = newStepAside(p.redis, cfg.Cluster.Peers, log)
		}
	}

	var err error
	if p.page, err = p.newLive(); err != nil {
		p.Close()
		return nil, err
	}

	opts := routingOptions(cfg.Routing, cfg.Managers)
	opts.Logger = log
	if p.redis != nil {
		opts.Cache = routing.NewRedisCache(p.redis, routing.DefaultRedisPrefix)
	} else {
		// Made here rather than by the router so that a reloaded router keeps it.
		opts.Cache = routing.NewMemoryCache(0, nil)
	}
	if cfg.AmoCRM.Configured() {
		var peersCutOff func() bool
		if p.cluster != nil {
			peersCutOff = p.cluster.peersCutOff
		}
		c, err := newAmoCRM(cfg, p.redis, peersCutOff, log)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.crm = c
		opts.Directory = c.CallPath()
		// Inquiries over HTTP wait behind calls, never in the slots kept for them.
		opts.InquiryDirectory = c
	}

	p.Cards = p.newCallCards()
	if a := cfg.Asterisk.ARI; a.Enabled || a.Inbound.Enabled {
		ctlOpts := ari.Options{
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
			Managers:          managerEndpoints(cfg.Managers),
			OnOutcome:         p.outbox.CallOutcome,
			OnDecision:        p.metrics.observe,
			Board:             p.page.board,
			OnRing:            p.cardWave,
			Transport:         a.Transport,
			Ringing:           a.Ringing,
			DialContext:       a.DialContext,
		}
		if a.Enabled {
			ctl, err := ari.New(ctlOpts)
			if err != nil {
				p.Close()
				return nil, err
			}
			p.ARI = ctl
			opts.Presence = ctl
		}
		if a.Inbound.Enabled {
			in, err := ari.NewInbound(ctlOpts, a.Inbound.Username, a.Inbound.Password)
			if err != nil {
				p.Close()
				return nil, err
			}
			p.ARIInbound = in
			if !a.Enabled {
				// The phones of the Asterisks connected to this instance, each asked over
				// its own connection (the controller's or the observer's).
				opts.Presence = in.Presence()
			}
		}
	}

	if o := cfg.Asterisk.Observer; o.Enabled {
		a := cfg.Asterisk.ARI
		obs, err := ari.NewObserver(ari.ObserverOptions{
			URL: a.URL, WSURL: a.WSURL, Username: a.Username, Password: a.Password, Application: o.Application,
			Managers: managerEndpoints(cfg.Managers), OfficeEndpoints: o.OfficeEndpoints, Logger: log,
			Names: managerNames(cfg.Managers), Credit: ari.Credit(o.Credit),
			OnOutcome: p.outbox.CallOutcome,
			Board:     p.page.board,
			OnRing:    p.cardRinging,
			OnSkipped: func(reason string) { p.metrics.notRecorded.WithLabelValues(reason).Inc() },
			OnGap:     func(n int64) { p.metrics.gapChannels.Add(float64(n)) },
			Inbound:   o.Inbound,
		})
		if err != nil {
			p.Close()
			return nil, err
		}
		p.Observer = obs
		if o.Inbound {
			if p.ARIInbound == nil {
				p.Close()
				return nil, errors.New("asterisk.observer.inbound: is true but asterisk.ari.inbound.enabled is false")
			}
			p.ARIInbound.Observe(obs)
		}
	}

	r, err := routing.New(opts)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("routing: %w", err)
	}
	p.router.swap(r, nil)
	p.routerBase = opts
	// FastAGI and the SIP redirect hand the decision to the dialplan, which rings: what
	// they answer is what the call got, counted here. The ARI controller rings itself and
	// counts what the call got in the end (OnDecision above), so its decider is not counted.
	p.Router, bound = r, &p.router
	p.Decider = routing.DeciderFunc(func(ctx context.Context, c routing.Call) routing.Decision {
		d := p.router.Decide(ctx, c)
		p.metrics.observe(c, d)
		if !c.Inquiry {
			p.page.board.Decided(c.Caller, d)
		}
		return d
	})
	if p.recordings, err = p.newRecordings(); err != nil {
		p.Close()
		return nil, err
	}
	if p.events, err = p.newEvents(); err != nil {
		p.Close()
		return nil, err
	}
	if p.chat, err = p.newChat(); err != nil {
		p.Close()
		return nil, err
	}

	// FastAGI and SIP redirect wait a little longer than the router's own bound so that a
	// CRM timeout is reported as such rather than cut off by the front end.
	frontEndTimeout := cfg.Routing.LookupTimeout + 2*time.Second
	if cfg.AGI.Enabled {
		nets, err := allowedNetworks("agi.allowed_networks", cfg.AGI.AllowedNetworks)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.AGI = agi.NewServer(p.Decider, agi.WithLogger(log), agi.WithTimeout(frontEndTimeout), agi.WithRingTimeout(cfg.Routing.RingTimeout),
			agi.WithAllowedNetworks(nets...))
	}
	if cfg.SIP.Enabled {
		nets, err := allowedNetworks("sip_redirect.allowed_networks", cfg.SIP.AllowedNetworks)
		if err != nil {
			p.Close()
			return nil, err
		}
		srv, err := sip.NewRedirectServer(p.Decider, sip.WithLogger(log), sip.WithAllowedNetworks(nets...),
			sip.WithContactTemplate(cfg.SIP.ContactTemplate), sip.WithFallbackContact(cfg.SIP.FallbackContact),
			sip.WithDecideTimeout(frontEndTimeout))
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("sip_redirect: %w", err)
		}
		p.SIP = srv
	}
	if cfg.ClickToCall.Enabled {
		if err := p.newClickToCall(); err != nil {
			p.Close()
			return nil, fmt.Errorf("click_to_call: %w", err)
		}
	}
	p.API = p.newAPI()
	return p, nil
}

// allowedNetworks parses a validated allowed_networks list.
func allowedNetworks(key string, networks []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(networks))
	for _, n := range networks {
		pfx, err := netip.ParsePrefix(n)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		out = append(out, pfx)
	}
	return out, nil
}

// newAmoCRM builds the amoCRM client of a configuration with an account. With Redis the
// account's budget (7 requests a second) is shared by every instance on that Redis.
func newAmoCRM(cfg *config.Config, rdb redis.UniversalClient, peersCutOff func() bool, log zerolog.Logger) (*amocrm.Client, error) {
	ao := amocrm.Options{
		BaseURL:        cfg.AmoCRM.BaseURL,
		Token:          cfg.AmoCRM.Token,
		RateLimit:      cfg.AmoCRM.RateLimit,
		CallReserve:    cfg.AmoCRM.CallReserve,
		RequestTimeout: cfg.AmoCRM.RequestTimeout,
		Region:         cfg.Routing.DefaultRegion,
		Logger:         log,
		SharedBudget:   rdb,
		// Without Redis each instance spends its share (cluster.peers lists the others).
		Instances:   1 + len(cfg.Cluster.Peers),
		PeersCutOff: peersCutOff,
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
		return nil, fmt.Errorf("amocrm: %w", err)
	}
	return c, nil
}

// routingOptions fills the router options that come from the YAML file; New adds the
// Directory, Cache, Presence and Logger it built.
func routingOptions(r config.Routing, managers []config.Manager) routing.Options {
	prec := make([]crm.EntityType, len(r.Precedence))
	for i, p := range r.Precedence {
		prec[i] = crm.EntityType(p)
	}
	ms := make([]routing.Manager, len(managers))
	for i, m := range managers {
		ms[i] = routing.Manager{CRMUser: m.CRMUser, Name: m.Name, Endpoints: m.Endpoints, Schedule: routing.ScheduleSpec(m.Schedule)}
	}
	return routing.Options{
		Managers:           ms,
		Precedence:         prec,
		LookupTimeout:      r.LookupTimeout,
		CacheTTL:           r.CacheTTL,
		NegativeTTL:        r.NegativeTTL,
		Region:             r.DefaultRegion,
		Enabled:            r.Enabled,
		CheckManagerStatus: r.CheckManagerStatus,
	}
}
