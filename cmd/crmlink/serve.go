package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/crmlink/crmlink/internal/config"
	"github.com/crmlink/crmlink/internal/httpapi"
	"github.com/crmlink/crmlink/internal/logging"
	"github.com/crmlink/crmlink/pbx/ari"
	"github.com/crmlink/crmlink/routing"
)

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", os.Getenv("CRMLINK_CONFIG"), "configuration file (env CRMLINK_CONFIG); embedded defaults when empty")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	log, err := logging.New(stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *path == "" {
		log.Info().Msg("no configuration file: running on embedded defaults (no Redis, no CRM, listeners on loopback)")
	} else {
		log.Info().Str("config", *path).Msg("configuration loaded")
	}
	logEffective(log, cfg)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runServer(ctx, cfg, log); err != nil {
		log.Error().Err(err).Msg("crmlink stopped with an error")
		return 1
	}
	log.Info().Msg("crmlink stopped")
	return 0
}

func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Parse(nil)
	}
	return config.Load(path)
}

// logEffective says what crmlink runs with; secrets are reported only as set or not.
func logEffective(log zerolog.Logger, cfg *config.Config) {
	log.Info().
		Str("http", cfg.HTTP.Listen).Bool("http_token_set", cfg.HTTP.Token != "").
		Bool("ari", cfg.Asterisk.ARI.Enabled).Str("ari_url", cfg.Asterisk.ARI.URL).Str("ari_app", cfg.Asterisk.ARI.Application).
		Bool("agi", cfg.AGI.Enabled).Bool("sip_redirect", cfg.SIP.Enabled).
		Strs("redis", cfg.Redis.Addrs).Bool("amocrm", cfg.AmoCRM.Configured()).Str("amocrm_url", cfg.AmoCRM.BaseURL).
		Bool("amocrm_token_set", cfg.AmoCRM.Token != "").
		Stringer("lookup_timeout", cfg.Routing.LookupTimeout).Stringer("cache_ttl", cfg.Routing.CacheTTL).
		Int("managers", len(cfg.Managers)).Str("fallback_context", cfg.Asterisk.Fallback.Context).
		Msg("effective configuration")
	if cfg.Asterisk.ARI.Enabled && cfg.Asterisk.ARI.Password == config.DefaultARIPassword {
		log.Warn().Msg("ARI uses the sample password from asterisk-conf/ari.conf; set CRMLINK_ARI_PASSWORD on a real PBX")
	}
}

// runServer wires the parts and runs them until ctx ends.
func runServer(ctx context.Context, cfg *config.Config, log zerolog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	api := httpapi.New(cfg.HTTP.Token, reg, log)

	var rdb redis.UniversalClient
	if cfg.Redis.Enabled() {
		rdb = redis.NewUniversalClient(&redis.UniversalOptions{
			Addrs: cfg.Redis.Addrs, MasterName: cfg.Redis.MasterName,
			Username: cfg.Redis.Username, Password: cfg.Redis.Password, DB: cfg.Redis.DB,
		})
		defer rdb.Close()
		api.AddCheck(httpapi.Check{Name: "redis", Required: true, State: func(ctx context.Context) (bool, string) {
			if err := rdb.Ping(ctx).Err(); err != nil {
				return false, err.Error()
			}
			return true, "connected"
		}})
	} else {
		api.AddCheck(httpapi.Check{Name: "redis", State: func(context.Context) (bool, string) { return true, "not configured: state in process" }})
	}

	decider := newDecider(cfg, log)

	g, ctx := errgroup.WithContext(ctx)
	if cfg.Asterisk.ARI.Enabled {
		a := cfg.Asterisk.ARI
		ctl, err := ari.New(ari.Options{
			URL: a.URL, WSURL: a.WSURL, Username: a.Username, Password: a.Password, Application: a.Application,
			Decider:           decider,
			FallbackContext:   cfg.Asterisk.Fallback.Context,
			FallbackExtension: cfg.Asterisk.Fallback.Extension,
			FallbackPriority:  cfg.Asterisk.Fallback.Priority,
			LookupTimeout:     cfg.Routing.LookupTimeout,
			RingTimeout:       cfg.Routing.RingTimeout,
			Logger:            log,
		})
		if err != nil {
			return err
		}
		api.AddCheck(httpapi.Check{Name: "ari", Required: true, State: func(context.Context) (bool, string) {
			if ctl.Connected() {
				return true, "application " + a.Application + " registered"
			}
			return false, "not connected to " + a.URL
		}})
		g.Go(func() error { return ctl.Run(ctx) })
	}
	g.Go(func() error { return api.ListenAndServe(ctx, cfg.HTTP.Listen) })
	err := g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// newDecider builds the routing decision for the configured CRM. Without a CRM every call
// goes to the fallback with reason "disabled".
func newDecider(cfg *config.Config, log zerolog.Logger) routing.Decider {
	_ = log
	return routing.DeciderFunc(func(context.Context, routing.Call) routing.Decision {
		start := time.Now()
		d := routing.FallbackDecision(routing.ReasonDisabled)
		d.Latency = time.Since(start)
		return d
	})
}
