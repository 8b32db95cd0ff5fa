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
		printConfigErrors(stderr, *path, err)
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
	// SIGHUP (systemctl reload) re-reads the file; without this it would end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := runServer(ctx, cfg, log, *path, hup); err != nil {
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
		Str("http", cfg.HTTP.Listen).Bool("http_token_set", cfg.HTTP.Token != "").Bool("http_read_token_set", cfg.HTTP.ReadToken != "").
		Bool("ari", cfg.Asterisk.ARI.Enabled).Str("ari_url", cfg.Asterisk.ARI.URL).Str("ari_app", cfg.Asterisk.ARI.Application).
		Bool("agi", cfg.AGI.Enabled).Bool("sip_redirect", cfg.SIP.Enabled).
		Strs("redis", cfg.Redis.Addrs).Bool("amocrm", cfg.AmoCRM.Configured()).Str("amocrm_url", cfg.AmoCRM.BaseURL).
		Bool("amocrm_token_set", cfg.AmoCRM.Token != "").
		Stringer("lookup_timeout", cfg.Routing.LookupTimeout).Stringer("cache_ttl", cfg.Routing.CacheTTL).
		Int("managers", len(cfg.Managers)).Str("fallback_context", cfg.Asterisk.Fallback.Context).
		Msg("effective configuration")
	for _, w := range cfg.Warnings() {
		log.Warn().Msg(w)
	}
	if cfg.Asterisk.ARI.Enabled && cfg.Asterisk.ARI.Password == config.DefaultARIPassword {
		log.Warn().Msg("ARI uses the sample password from asterisk-conf/ari.conf; set CRMLINK_ARI_PASSWORD on a real PBX")
	}
}

// runServer wires the parts and runs them until ctx ends, reloading the configuration
// file on every value from hup.
func runServer(ctx context.Context, cfg *config.Config, log zerolog.Logger, path string, hup <-chan os.Signal) error {
	a, err := app.New(cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	// The signal goroutine says when the stop begins; Run may return before it gets to,
	// so runServer waits for it (the line must be in the log before "crmlink stopped").
	announced := make(chan struct{})
	go func() {
		defer close(announced)
		for {
			select {
			case <-ctx.Done():
				log.Info().Msg("stopping: calls in progress are finished first, queued events stay queued for the next start")
				return
			case <-hup:
				reload(a, path, log)
			}
		}
	}()
	err = a.Run(ctx)
	if ctx.Err() != nil {
		<-announced
	}
	return err
}

// reload re-reads and validates the file and applies what can change without dropping
// calls; a file with errors changes nothing.
func reload(a *app.App, path string, log zerolog.Logger) {
	if path == "" {
		log.Warn().Msg("SIGHUP: running on embedded defaults, there is no file to reload")
		return
	}
	next, err := config.Load(path)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				log.Error().Str("config", path).Msg("reload: " + e)
			}
		} else {
			log.Error().Err(err).Str("config", path).Msg("reload: cannot read the file")
		}
		log.Error().Str("config", path).Msg("configuration NOT reloaded: fix the errors above; the running configuration is unchanged")
		return
	}
	res, err := a.Reload(next)
	if err != nil {
		log.Error().Err(err).Str("config", path).Msg("configuration NOT reloaded; the running configuration is unchanged")
		return
	}
	for _, w := range res.Warnings {
		log.Warn().Msg("reload: " + w)
	}
	if len(res.Restart) > 0 {
		log.Warn().Strs("keys", res.Restart).Msg("reload: these changes need a restart (systemctl restart crmlink); the running values are kept")
	}
	switch {
	case len(res.Applied) > 0:
		log.Info().Str("config", path).Strs("applied", res.Applied).Msg("configuration reloaded")
	case !res.Changed():
		log.Info().Str("config", path).Msg("configuration reloaded: no changes")
	default:
		log.Info().Str("config", path).Msg("configuration reloaded: nothing applied until a restart")
	}
}
