package app

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/crmlink/crmlink/internal/httpapi"
)

// newAPI builds the HTTP API with health checks for what is configured.
func (p *App) newAPI() *httpapi.Server {
	cfg, log := p.cfg, p.log
	api := httpapi.New(httpapi.Tokens{Admin: cfg.HTTP.Token, Read: cfg.HTTP.ReadToken, CallKeySecret: cfg.ClickToCall.KeySecret}, p.metrics.registry, log)
	if rdb := p.redis; rdb != nil {
		// Not required: routing never depends on Redis (the owner cache falls through to
		// amoCRM), so an instance keeps taking calls without it, unless it has peers that
		// still reach Redis: then the cluster check makes it step aside for them.
		api.AddCheck(httpapi.Check{Name: "redis", State: func(ctx context.Context) (bool, string) {
			// A Redis that does not answer a PING quickly is as good as gone for a call,
			// and a load balancer's check must not wait on it.
			ctx, cancel := context.WithTimeout(ctx, redisPingWait)
			defer cancel()
			if err := rdb.Ping(ctx).Err(); err != nil {
				return false, err.Error()
			}
			return true, "connected"
		}})
	} else {
		api.AddCheck(httpapi.Check{Name: "redis", State: func(context.Context) (bool, string) { return true, "not configured: state in process" }})
	}
	if p.cluster != nil {
		api.AddCheck(p.cluster.check())
	}
	if ctl := p.ARI; ctl != nil {
		p.metrics.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "crmlink_ari_active_calls", Help: "Calls the Stasis controller is handling now.",
		}, func() float64 { return float64(ctl.ActiveCalls()) }))
		app, url := cfg.Asterisk.ARI.Application, cfg.Asterisk.ARI.URL
		api.AddCheck(httpapi.Check{Name: "ari", Required: true, State: func(context.Context) (bool, string) {
			if ctl.Connected() {
				return true, "application " + app + " registered"
			}
			return false, "not connected to " + url
		}})
	}
	if in := p.ARIInbound; in != nil {
		p.metrics.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "crmlink_ari_inbound_connections", Help: "Asterisks connected over their ARI Outbound WebSockets.",
		}, func() float64 { return float64(in.Connections()) }))
		// Not required: a load balancer must keep sending Asterisk's connection to an
		// instance no Asterisk has connected to yet.
		api.AddCheck(httpapi.Check{Name: "ari_inbound", State: func(context.Context) (bool, string) {
			if n := in.Connections(); n > 0 {
				return true, fmt.Sprintf("%d Asterisk connected", n)
			}
			return false, "no Asterisk connected"
		}})
	}
	if o := p.Observer; o != nil && p.cfg.Asterisk.Observer.Inbound {
		p.metrics.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "crmlink_observer_connections", Help: "Asterisks whose calls the call observer follows now over their ARI Outbound WebSockets (asterisk.observer.inbound).",
		}, func() float64 { return float64(o.Connections()) }))
	}
	p.eventStoreCheck(api)
	if c := p.crm; c != nil {
		for _, prio := range []string{"call", "background"} {
			p.metrics.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "crmlink_amocrm_requests_total", Help: "Requests sent to amoCRM by priority: call (lookups while a call is set up) or background (the event path); the account allows 7 a second.",
				ConstLabels: prometheus.Labels{"priority": prio},
			}, func() float64 {
				call, bg := c.Requests()
				if prio == "call" {
					return float64(call)
				}
				return float64(bg)
			}))
		}
	}
	api.HandleUI(p.page)
	// Whose client a number is, dead events (names, phones, chat text) and manager states
	// are client data; queue stats are counts, but a dashboard holding the read token
	// reads them with the rest, and nothing under /v1 but the webhooks is open.
	api.Handle("GET /v1/route", httpapi.Read, httpapi.RouteHandler(p.Decider))
	if p.recordings != nil {
		// amoCRM's player fetches the notes' links from the manager's browser: the link's
		// signature is the credential.
		api.Handle("GET /v1/recordings/{file}", httpapi.Signed, httpapi.Recordings(p.recordings, log))
	}
	if p.events != nil {
		api.Handle("GET /v1/queue/dead", httpapi.Read, httpapi.DeadEvents(p.events.queue))
		api.Handle("GET /v1/queue/stats", httpapi.Read, httpapi.QueueStats(p.events.queue))
		api.Handle("POST /v1/queue/dead/{id}/replay", httpapi.Admin, httpapi.ReplayDead(p.events.queue))
		api.Handle("POST /v1/queue/dead/replay", httpapi.Admin, httpapi.ReplayAllDead(p.events.queue))
		if p.redis != nil {
			api.AddCheck(httpapi.Check{Name: "queue_persistence", State: func(ctx context.Context) (bool, string) {
				ctx, cancel := context.WithTimeout(ctx, redisPingWait)
				defer cancel()
				return p.redisPersistence(ctx)
			}})
		}
	}
	get, put := httpapi.ManagerAvailability(&p.router)
	api.Handle("GET /v1/managers/{id}/availability", httpapi.Read, get)
	api.Handle("PUT /v1/managers/{id}/availability", httpapi.Admin, put)
	var enqueue httpapi.ChangeEnqueuer
	if p.chat != nil {
		enqueue = p.outbox.CRMChange
	}
	api.Handle("POST /v1/webhooks/amocrm/{secret}", httpapi.Webhook, httpapi.AmoCRMWebhook(cfg.AmoCRM.WebhookSecret, &p.router, enqueue, log))
	p.chatRoutes(api)
	p.clickToCallRoutes(api)
	if cfg.AmoCRM.Configured() && cfg.AmoCRM.WebhookSecret == "" {
		log.Warn().Msg("amocrm.webhook_secret is empty: amoCRM webhooks are refused, so responsible changes reach routing only when the cache expires")
	}
	return api
}

// Run starts every configured part and blocks until ctx ends or one of them fails.
func (p *App) Run(ctx context.Context) error {
	l, err := net.Listen("tcp", p.cfg.HTTP.Listen)
	if err != nil {
		return err
	}
	return p.Serve(ctx, l)
}

// Serve is Run with the HTTP listener given (tests listen on port 0). The front ends
// share one fate; the event queue runs beside them and stops with them.
func (p *App) Serve(ctx context.Context, httpListener net.Listener) error {
	g, ctx := errgroup.WithContext(ctx)
	events := p.runEvents(ctx)
	if p.cluster != nil {
		g.Go(func() error { p.cluster.run(ctx); return nil })
	}
	if p.ARI != nil {
		g.Go(func() error { return p.ARI.Run(ctx) })
	}
	if in := p.ARIInbound; in != nil {
		ln, err := net.Listen("tcp", p.cfg.Asterisk.ARI.Inbound.Listen)
		if err != nil {
			return fmt.Errorf("asterisk.ari.inbound.listen: %w", err)
		}
		g.Go(func() error { return in.Serve(ctx, ln) })
	}
	if p.Observer != nil {
		g.Go(func() error { return p.Observer.Run(ctx) })
	}
	if p.Dialer != nil {
		g.Go(func() error { return p.Dialer.Run(ctx) })
	}
	if p.AGI != nil {
		g.Go(func() error { return p.AGI.ListenAndServe(ctx, p.cfg.AGI.Listen) })
	}
	if p.SIP != nil {
		g.Go(func() error { return p.SIP.ListenAndServe(ctx, "udp", p.cfg.SIP.Listen) })
	}
	g.Go(func() error { return p.API.Serve(ctx, httpListener) })
	err := g.Wait()
	<-events
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
