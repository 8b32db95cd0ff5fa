package app

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/internal/config"
	"github.com/crmlink/crmlink/routing"
)

// Reload (SIGHUP) swaps in what can change without touching a connection: the managers
// (phones, schedules, names), the router's tunables and the scenarios. The router and the
// rules engine are rebuilt from the new file and replace the running ones at once; a call
// in progress keeps the decision it already has, the next call uses the new router. The
// owner cache and manual manager statuses carry over.
//
// Everything else (listeners, ARI, Redis, amoCRM address and credentials, the queue,
// data_dir, log, lookup_timeout, ring_timeout, default_region) is wired into connections
// or into several components at start; a change there is reported as needing a restart
// and the running value is kept.

// liveKeys are the configuration keys Reload applies; a key matches itself and the keys
// under it.
var liveKeys = []string{
	"managers",
	"routing.enabled",
	"routing.cache_ttl",
	"routing.negative_ttl",
	"routing.precedence",
	"routing.check_manager_status",
	"scenarios",
}

// ReloadResult says what a reload did.
type ReloadResult struct {
	// Applied are the changed keys now in effect.
	Applied []string
	// Restart are the changed keys that take effect only after a restart; the running
	// values are kept.
	Restart []string
	// Warnings are partial effects an administrator should know about.
	Warnings []string
}

// Changed reports whether the new file differed from the running configuration at all.
func (r ReloadResult) Changed() bool { return len(r.Applied)+len(r.Restart) > 0 }

// Reload applies next (a loaded and validated configuration) as far as it can be applied
// without dropping calls. On an error nothing changes.
func (p *App) Reload(next *config.Config) (ReloadResult, error) {
	p.reloadMu.Lock()
	defer p.reloadMu.Unlock()

	var res ReloadResult
	for _, k := range changedKeys(p.live, next) {
		if isLive(k) {
			res.Applied = append(res.Applied, k)
		} else {
			res.Restart = append(res.Restart, k)
		}
	}
	if len(res.Applied) == 0 {
		return res, nil
	}

	// The running configuration with only the live keys taken from the new file.
	merged := *p.live
	merged.Managers = next.Managers
	merged.Routing.Enabled = next.Routing.Enabled
	merged.Routing.CacheTTL = next.Routing.CacheTTL
	merged.Routing.NegativeTTL = next.Routing.NegativeTTL
	merged.Routing.Precedence = next.Routing.Precedence
	merged.Routing.CheckManagerStatus = next.Routing.CheckManagerStatus
	merged.Scenarios = next.Scenarios

	// Build everything first: a failure leaves the running parts untouched.
	opts := routingOptions(merged.Routing, merged.Managers)
	opts.Directory, opts.InquiryDirectory = p.routerBase.Directory, p.routerBase.InquiryDirectory
	opts.Cache, opts.Presence = p.routerBase.Cache, p.routerBase.Presence
	opts.Logger, opts.OnDecision = p.routerBase.Logger, p.routerBase.OnDecision
	r, err := routing.New(opts)
	if err != nil {
		return ReloadResult{}, fmt.Errorf("routing: %w", err)
	}
	var swapEngine func()
	if p.events != nil && !reflect.DeepEqual(p.live.Scenarios, merged.Scenarios) {
		e, err := p.events.build(merged.Scenarios)
		if err != nil {
			return ReloadResult{}, fmt.Errorf("scenarios: %w", err)
		}
		swapEngine = func() { p.events.engine.Store(e) }
	}

	if (p.ARI != nil || p.Observer != nil) && !maps.Equal(managerEndpoints(p.live.Managers), managerEndpoints(merged.Managers)) {
		res.Warnings = append(res.Warnings, "managers: the new phones ring from the next call on; "+
			"until a restart, an answer on a phone added or moved by this reload is not credited to its manager in CRM records")
	}
	users := make([]crm.UserID, 0, len(p.live.Managers))
	for _, m := range p.live.Managers {
		users = append(users, crm.UserID(m.CRMUser))
	}
	p.router.swap(r, users)
	if swapEngine != nil {
		swapEngine()
	}
	p.live = &merged
	return res, nil
}

// Config returns the configuration in effect (the start one with reloaded keys applied).
func (p *App) Config() *config.Config {
	p.reloadMu.Lock()
	defer p.reloadMu.Unlock()
	return p.live
}

// CurrentRouter is the router deciding calls now; Reload replaces it.
func (p *App) CurrentRouter() *routing.Router { return p.router.get() }

func isLive(key string) bool {
	for _, k := range liveKeys {
		if key == k || strings.HasPrefix(key, k+".") {
			return true
		}
	}
	return false
}

// changedKeys lists the YAML keys whose values differ, as dotted paths
// ("routing.cache_ttl", "asterisk.ari.url"); lists are compared whole ("managers").
func changedKeys(a, b *config.Config) []string {
	fa, fb := map[string]any{}, map[string]any{}
	flatten(reflect.ValueOf(*a), "", fa)
	flatten(reflect.ValueOf(*b), "", fb)
	var out []string
	for k, v := range fa {
		if w, ok := fb[k]; !ok || !reflect.DeepEqual(v, w) {
			out = append(out, k)
		}
	}
	for k := range fb {
		if _, ok := fa[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

func flatten(v reflect.Value, prefix string, out map[string]any) {
	if v.Kind() != reflect.Struct {
		out[prefix] = v.Interface()
		return
	}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name := strings.Split(tag, ",")[0]
		if name == "" && strings.HasSuffix(tag, ",inline") {
			flatten(v.Field(i), prefix, out)
			continue
		}
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		if prefix != "" {
			name = prefix + "." + name
		}
		flatten(v.Field(i), name, out)
	}
}

// swappableRouter is the router every front end asks. Decide reads the current router
// without a lock, so a reload never delays a call; the manual-status methods take a read
// lock so that a status set during a reload is not lost in the swap.
type swappableRouter struct {
	cur atomic.Pointer[routing.Router]
	mu  sync.RWMutex
}

func (s *swappableRouter) get() *routing.Router { return s.cur.Load() }

// swap installs r, carrying over the manual statuses of the users (the managers of the
// running configuration) that r still has.
func (s *swappableRouter) swap(r *routing.Router, users []crm.UserID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.cur.Load(); old != nil {
		for _, u := range users {
			if a := old.ManagerAvailability(u); a != routing.Auto {
				_ = r.SetManagerAvailability(u, a) // fails only for a manager the reload removed
			}
		}
	}
	s.cur.Store(r)
}

func (s *swappableRouter) Decide(ctx context.Context, c routing.Call) routing.Decision {
	return s.cur.Load().Decide(ctx, c)
}

func (s *swappableRouter) SetManagerAvailability(u crm.UserID, a routing.Availability) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cur.Load().SetManagerAvailability(u, a)
}

func (s *swappableRouter) ManagerAvailability(u crm.UserID) routing.Availability {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cur.Load().ManagerAvailability(u)
}

// ResolveClient lets the call scenarios use the current router's resolution.
func (s *swappableRouter) ResolveClient(ctx context.Context, phone crm.Phone, seen *routing.Client) (routing.Client, bool, error) {
	return s.cur.Load().ResolveClient(ctx, phone, seen)
}

func (s *swappableRouter) ChooseClient(ctx context.Context, contacts []crm.Contact) (routing.Client, error) {
	return s.cur.Load().ChooseClient(ctx, contacts)
}

func (s *swappableRouter) ApplyResponsibleChange(ctx context.Context, ch crm.ResponsibleChange) error {
	return s.cur.Load().ApplyResponsibleChange(ctx, ch)
}
