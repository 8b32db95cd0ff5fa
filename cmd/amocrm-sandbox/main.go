// Command amocrm-sandbox runs the amoCRM v4 emulator of package sandbox for demos and
// end-to-end tests:
//
//	amocrm-sandbox --listen 127.0.0.1:8099 --seed seed.yaml [--rate-limit 7] [--webhook-url URL]
//
// It prints the base URL to give crmlink as the amoCRM address on stdout, logs JSON to
// stderr, and shuts down gracefully on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
)

func main() {
	log := zerolog.New(os.Stderr).With().Timestamp().Str("component", "amocrm-sandbox").Logger()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, log); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		log.Error().Err(err).Msg("amocrm-sandbox stopped")
		os.Exit(1)
	}
}

type config struct {
	listen     string
	seed       string
	rateLimit  int
	webhookURL string
	debug      bool
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("amocrm-sandbox", flag.ContinueOnError)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8099", "address to listen on (loopback by default: the sandbox has an unauthenticated control API)")
	fs.StringVar(&c.seed, "seed", "", "seed file (YAML or JSON) with users, contacts, companies and leads")
	fs.IntVar(&c.rateLimit, "rate-limit", 0, "API requests per sliding second before 429 (default: the seed's, else 7; negative disables)")
	fs.StringVar(&c.webhookURL, "webhook-url", "", "where responsible-change webhooks are posted (default: the seed's)")
	fs.BoolVar(&c.debug, "debug", false, "log every API request")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.seed == "" {
		return c, errors.New("--seed is required: point it at a seed file such as crm/amocrm/sandbox/testdata/seed.yaml")
	}
	return c, nil
}

// run serves until ctx ends, then lets in-flight requests finish for up to five seconds.
func run(ctx context.Context, args []string, stdout io.Writer, log zerolog.Logger) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	seed, err := sandbox.LoadSeed(cfg.seed)
	if err != nil {
		return err
	}
	level := zerolog.InfoLevel
	if cfg.debug {
		level = zerolog.DebugLevel
	}
	opts := []sandbox.Option{sandbox.WithLogger(log.Level(level))}
	if cfg.rateLimit != 0 {
		opts = append(opts, sandbox.WithRateLimit(cfg.rateLimit))
	}
	sb := sandbox.New(seed, opts...)
	defer sb.Close()
	if cfg.webhookURL != "" {
		if err := sb.SetWebhookURL(cfg.webhookURL); err != nil {
			return fmt.Errorf("--webhook-url: %w", err)
		}
	}

	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: sb, ReadHeaderTimeout: 10 * time.Second}
	base := "http://" + ln.Addr().String()
	log.Info().Str("url", base).Str("seed", cfg.seed).Int("contacts", len(seed.Contacts)).Msg("amocrm sandbox listening")
	fmt.Fprintln(stdout, base)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info().Msg("shutting down")
	sb.Close() // release hanging requests so Shutdown does not wait on them
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
