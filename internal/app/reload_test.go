package app

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
	"github.com/crmlink/crmlink/internal/config"
	"github.com/crmlink/crmlink/routing"
)

// reloadApp is crmlink without ARI against an amoCRM sandbox: one client of user 7; edits
// change the configuration before the app is built.
func reloadApp(t *testing.T, edits ...func(*config.Config)) (*App, *config.Config) {
	t.Helper()
	a, cfg, _ := sandboxApp(t, zerolog.Nop(), edits...)
	return a, cfg
}

// sandboxApp is reloadApp logging to log, with the amoCRM sandbox it talks to.
func sandboxApp(t *testing.T, log zerolog.Logger, edits ...func(*config.Config)) (*App, *config.Config, *sandbox.Server) {
	t.Helper()
	crm := sandbox.New(sandbox.Seed{
		Token:    "tok",
		Users:    []sandbox.User{{ID: 7, Name: "Anna"}, {ID: 8, Name: "Boris"}},
		Contacts: []sandbox.Contact{{ID: 1, Name: "Client", ResponsibleUserID: 7, Phones: []string{"+7 495 123-45-67"}}},
	})
	srv := httptest.NewServer(crm)
	t.Cleanup(srv.Close)
	t.Cleanup(crm.Close)
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Asterisk.ARI.Enabled = false
	cfg.AmoCRM.BaseURL, cfg.AmoCRM.Token = srv.URL, "tok"
	cfg.Managers = []config.Manager{{CRMUser: 7, Name: "Anna", Endpoints: []string{"PJSIP/101"}}}
	for _, edit := range edits {
		edit(cfg)
	}
	require.Empty(t, cfg.Validate())
	a, err := New(cfg, log)
	require.NoError(t, err)
	t.Cleanup(a.Close)
	return a, cfg, crm
}

// edited is a copy of cfg as the administrator's edited file would load.
func edited(cfg *config.Config, edit func(*config.Config)) *config.Config {
	c := *cfg
	c.Managers = append([]config.Manager(nil), cfg.Managers...)
	edit(&c)
	return &c
}

func decide(t *testing.T, a *App) routing.Decision {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return a.Decider.Decide(ctx, routing.Call{Caller: "84951234567", Called: "200"})
}

func endpoints(d routing.Decision) []string {
	var out []string
	for _, t := range d.Targets {
		out = append(out, t.Endpoint)
	}
	return out
}

func TestReloadAppliesManagersAtOnce(t *testing.T) {
	a, cfg := reloadApp(t)
	d := decide(t, a)
	require.Equal(t, routing.Routed, d.Result)
	assert.Equal(t, []string{"PJSIP/101"}, endpoints(d))

	// The manager's phone changes: the next call rings the new one.
	next := edited(cfg, func(c *config.Config) {
		c.Managers[0] = config.Manager{CRMUser: 7, Name: "Anna", Endpoints: []string{"PJSIP/201", "PJSIP/202"}}
	})
	res, err := a.Reload(next)
	require.NoError(t, err)
	assert.Equal(t, []string{"managers"}, res.Applied)
	assert.Empty(t, res.Restart)
	assert.Empty(t, res.Warnings, "no ARI controller: nothing to restart for the new phones")
	d = decide(t, a)
	assert.Equal(t, routing.Routed, d.Result)
	assert.Equal(t, []string{"PJSIP/201", "PJSIP/202"}, endpoints(d))
	assert.Equal(t, "cache", string(d.Source), "the owner cache survives the reload")
	assert.Same(t, a.CurrentRouter(), a.router.get())
	assert.NotSame(t, a.Router, a.CurrentRouter())

	// The manager leaves the map: the client's calls fall back.
	res, err = a.Reload(edited(next, func(c *config.Config) { c.Managers = nil }))
	require.NoError(t, err)
	assert.Equal(t, []string{"managers"}, res.Applied)
	d = decide(t, a)
	assert.Equal(t, routing.Fallback, d.Result)
	assert.Equal(t, routing.ReasonNoOwner, d.Reason)
}

func TestReloadKeepsManualStatus(t *testing.T) {
	a, cfg := reloadApp(t)
	require.NoError(t, a.router.SetManagerAvailability(7, routing.Unavailable))
	_, err := a.Reload(edited(cfg, func(c *config.Config) { c.Managers[0].Name = "Anna K." }))
	require.NoError(t, err)
	assert.Equal(t, routing.Unavailable, a.router.ManagerAvailability(7), "a manager set unavailable stays so")
	d := decide(t, a)
	assert.Equal(t, routing.ReasonOwnerUnavailable, d.Reason)
}

func TestReloadReportsWhatNeedsARestart(t *testing.T) {
	a, cfg := reloadApp(t)
	next := edited(cfg, func(c *config.Config) {
		c.HTTP.Listen = "127.0.0.1:9999"
		c.Routing.LookupTimeout = 3 * time.Second
		c.AmoCRM.Token = "other"
	})
	res, err := a.Reload(next)
	require.NoError(t, err)
	assert.Empty(t, res.Applied)
	assert.Equal(t, []string{"amocrm.token", "http.listen", "routing.lookup_timeout"}, res.Restart)
	assert.Equal(t, 1500*time.Millisecond, a.Config().Routing.LookupTimeout, "the running value is kept")
	assert.Equal(t, "127.0.0.1:8080", a.Config().HTTP.Listen)

	res, err = a.Reload(cfg)
	require.NoError(t, err)
	assert.False(t, res.Changed(), "the same file again changes nothing")
}

func TestReloadSwapsScenarios(t *testing.T) {
	a, cfg := reloadApp(t)
	before := a.events.engine.Load()
	next := edited(cfg, func(c *config.Config) {
		c.Scenarios.Missed.Deadline = 2 * time.Hour
		c.Routing.CacheTTL = time.Hour
	})
	res, err := a.Reload(next)
	require.NoError(t, err)
	assert.Equal(t, []string{"routing.cache_ttl", "scenarios.missed.deadline"}, res.Applied)
	after := a.events.engine.Load()
	assert.NotSame(t, before, after)
	assert.Equal(t, 2*time.Hour, after.Config().Missed.Deadline)
	assert.Equal(t, time.Hour, a.Config().Routing.CacheTTL)
}

func TestReloadRefusedLeavesEverythingRunning(t *testing.T) {
	a, cfg := reloadApp(t)
	router, engine := a.CurrentRouter(), a.events.engine.Load()
	// Scenarios the rules engine refuses (they passed no config validation here).
	bad := edited(cfg, func(c *config.Config) {
		c.Managers[0].Endpoints = []string{"PJSIP/301"}
		c.Scenarios.Incoming.Unknown.Mode = "sideways"
	})
	_, err := a.Reload(bad)
	require.Error(t, err)
	assert.Same(t, router, a.CurrentRouter(), "the router is not replaced")
	assert.Same(t, engine, a.events.engine.Load())
	assert.Equal(t, []string{"PJSIP/101"}, endpoints(decide(t, a)))
}

func TestChangedKeys(t *testing.T) {
	a := config.Default()
	b := config.Default()
	b.Asterisk.ARI.URL = "http://pbx:8088/ari"
	b.Managers = []config.Manager{{CRMUser: 1, Endpoints: []string{"PJSIP/1"}}}
	b.Scenarios.Notes.Source = "pbx"
	assert.Equal(t, []string{"asterisk.ari.url", "managers", "scenarios.notes.source"}, changedKeys(a, b))
	assert.Empty(t, changedKeys(a, config.Default()))
	assert.True(t, isLive("scenarios.missed.deadline"))
	assert.False(t, isLive("routing.lookup_timeout"))
	assert.False(t, isLive("managersx"))
}

// The call observer, like the controller, credits answers by the endpoints it started with:
// a reload that moves a phone says so instead of leaving CRM records silently wrong.
func TestReloadWithTheObserverWarnsAboutMovedPhones(t *testing.T) {
	a, cfg := reloadApp(t, func(c *config.Config) {
		c.Asterisk.Observer.Enabled = true // not run: New only checks its options
	})
	require.NotNil(t, a.Observer)
	res, err := a.Reload(edited(cfg, func(c *config.Config) {
		c.Managers[0] = config.Manager{CRMUser: 7, Name: "Anna", Endpoints: []string{"PJSIP/201"}}
	}))
	require.NoError(t, err)
	require.Len(t, res.Warnings, 1)
	assert.Contains(t, res.Warnings[0], "not credited to its manager")
}
