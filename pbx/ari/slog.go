package ari

import (
	"context"

	"github.com/rs/zerolog"
	"golang.org/x/exp/slog"
)

// zerologHandler sends the ARI library's log records (it logs through golang.org/x/exp/slog,
// not log/slog) to crmlink's zerolog logger.
type zerologHandler struct {
	log   zerolog.Logger
	attrs []slog.Attr
}

func newSlogLogger(log zerolog.Logger) *slog.Logger {
	return slog.New(&zerologHandler{log: log.With().Str("lib", "ari").Logger()})
}

func (h *zerologHandler) Enabled(_ context.Context, l slog.Level) bool {
	return h.log.GetLevel() <= zerologLevel(l)
}

func (h *zerologHandler) Handle(_ context.Context, r slog.Record) error {
	ev := h.log.WithLevel(zerologLevel(r.Level))
	for _, a := range h.attrs {
		ev = ev.Interface(a.Key, a.Value.Any())
	}
	r.Attrs(func(a slog.Attr) bool {
		ev = ev.Interface(a.Key, a.Value.Any())
		return true
	})
	ev.Msg(r.Message)
	return nil
}

func (h *zerologHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &zerologHandler{log: h.log, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

func (h *zerologHandler) WithGroup(name string) slog.Handler {
	return &zerologHandler{log: h.log.With().Str("group", name).Logger(), attrs: h.attrs}
}

func zerologLevel(l slog.Level) zerolog.Level {
	switch {
	case l >= slog.LevelError:
		return zerolog.ErrorLevel
	case l >= slog.LevelWarn:
		return zerolog.WarnLevel
	case l >= slog.LevelInfo:
		return zerolog.InfoLevel
	}
	return zerolog.DebugLevel
}
