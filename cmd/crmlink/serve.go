package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/internal/app"
	"github.com/crmlink/crmlink/internal/config"
	"github.com/crmlink/crmlink/internal/logging"
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
	a, err := app.New(cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Run(ctx)
}
