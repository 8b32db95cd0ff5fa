package app

import (
	"context"

	"github.com/crmlink/crmlink/clicktocall"
	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/internal/httpapi"
	"github.com/crmlink/crmlink/pbx/ari"
)

// newClickToCall builds click-to-call (click_to_call.enabled): the ARI dialer and the
// service the HTTP API asks. Managers are read from the configuration in effect, so a
// reload's phones and caller ids apply to the next click.
func (p *App) newClickToCall() error {
	cfg := p.cfg
	a := cfg.Asterisk.ARI
	d, err := ari.NewDialer(ari.DialerOptions{
		URL: a.URL, WSURL: a.WSURL, Username: a.Username, Password: a.Password,
		Application: cfg.ClickToCall.Application, Context: cfg.ClickToCall.Context,
		RingTimeout: cfg.Routing.RingTimeout, Logger: p.log,
	})
	if err != nil {
		return err
	}
	p.Dialer = d
	if !cfg.Asterisk.Observer.Enabled {
		p.log.Warn().Msg("click_to_call is on but asterisk.observer is off: the calls it places ring and connect, and amoCRM gets no note of them")
	}
	p.Calls = clicktocall.New(clicktocall.Options{
		Region: cfg.Routing.DefaultRegion,
		PBX:    d,
		Manager: func(u crm.UserID) (clicktocall.Manager, bool) {
			for _, m := range p.Config().Managers {
				if crm.UserID(m.CRMUser) == u {
					return clicktocall.Manager{User: u, Endpoints: m.Endpoints, CallerID: m.CallerID}, true
				}
			}
			return clicktocall.Manager{}, false
		},
	})
	return nil
}

// clickToCallRoutes registers POST /v1/calls and GET /v1/calls/{id} with their CORS
// origins and the click-to-call health check.
func (p *App) clickToCallRoutes(api *httpapi.Server) {
	if p.Calls == nil {
		return
	}
	c := p.cfg.ClickToCall
	api.HandleCORS("POST /v1/calls", httpapi.CallKey, c.AllowedOrigins, httpapi.PlaceCall(p.Calls, p.log))
	api.HandleCORS("GET /v1/calls/{id}", httpapi.CallKey, c.AllowedOrigins, httpapi.CallState(p.Calls))
	d := p.Dialer
	api.AddCheck(httpapi.Check{Name: "click_to_call", State: func(context.Context) (bool, string) {
		if d.Connected() {
			return true, "application " + c.Application + " registered"
		}
		return false, "not connected to Asterisk: POST /v1/calls answers 503"
	}})
}
