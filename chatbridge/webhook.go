package chatbridge

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/events"
)

// MaxWebhookBody bounds a webhook body an adapter reads; chat webhooks are a few kilobytes.
const MaxWebhookBody = 1 << 20

// WebhookDeadline is how long WebhookHandler may take before answering: Jivo and amoCRM
// wait 2 s, Wazzup 30 s; the handler only parses and enqueues.
const WebhookDeadline = 1500 * time.Millisecond

// Publisher stores an event durably in the event queue.
type Publisher func(ctx context.Context, e events.Envelope) error

// WebhookOption adjusts a WebhookHandler.
type WebhookOption func(*webhookHandler)

// WithEntities answers the webhooks that ask for a CRM entity (EventContactWanted,
// EventDealWanted) with the entity m makes, in the body the adapter (an EntityAnswerer)
// renders.
func WithEntities(m EntityMaker) WebhookOption { return func(h *webhookHandler) { h.entities = m } }

type webhookHandler struct {
	entities EntityMaker
}

// EntityDeadline bounds making an entity a webhook asks for (two CRM requests at most);
// Wazzup waits 30 s for the answer.
const EntityDeadline = 20 * time.Second

// WebhookHandler serves a platform's webhook: it parses and authenticates the request
// with the adapter, publishes every event to the queue and answers 200 once they are
// stored. A wrong secret is answered 401, a body that is not the platform's webhook 400
// (both logged), a queue that cannot store the events 503 so the platform retries. A
// webhook that asks for a CRM entity (Wazzup's createContact, createDeal) is answered with
// the entity (WithEntities), or 503 when it could not be made.
// Register it under the path the platform calls, with a {secret} segment for platforms
// that authenticate by URL: "POST /v1/chat/chatapp/{secret}", "POST /v1/chat/wazzup".
func WebhookHandler(in Inbound, publish Publisher, log zerolog.Logger, opts ...WebhookOption) http.Handler {
	log = log.With().Str("component", "chat-webhook").Str("platform", string(in.Name())).Logger()
	var h webhookHandler
	for _, o := range opts {
		o(&h)
	}
	answerer, _ := in.(EntityAnswerer)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, MaxWebhookBody)
		events, err := in.ParseWebhook(r)
		if err != nil {
			status := StatusFor(err)
			log.Warn().Err(err).Str("remote", r.RemoteAddr).Int("status", status).Msg("rejected chat webhook")
			http.Error(w, http.StatusText(status), status)
			return
		}
		var answer any = map[string]string{"result": "ok"}
		var queued []Event
		for _, e := range events {
			if !e.Kind.Wanted() {
				queued = append(queued, e)
				continue
			}
			if h.entities == nil || answerer == nil {
				log.Warn().Str("event", e.ID).Str("kind", string(e.Kind)).Msg("the platform asks for a CRM entity and crmlink makes none here; answered without it")
				continue
			}
			ectx, cancel := context.WithTimeout(r.Context(), EntityDeadline)
			ent, err := h.entities.MakeEntity(ectx, e)
			cancel()
			if err != nil {
				status := http.StatusServiceUnavailable
				if errors.Is(err, ErrBadWebhook) {
					status = http.StatusBadRequest
				}
				log.Error().Err(err).Str("event", e.ID).Str("kind", string(e.Kind)).Int("status", status).Msg("the CRM entity a chat webhook asks for was not made")
				http.Error(w, http.StatusText(status), status)
				return
			}
			log.Info().Str("event", e.ID).Str("kind", string(e.Kind)).Str("entity", string(ent.Type)).Int64("id", ent.ID).Msg("chat webhook answered with a CRM entity")
			answer = answerer.AnswerEntity(e, ent)
		}
		ctx, cancel := context.WithTimeout(r.Context(), WebhookDeadline)
		defer cancel()
		for _, e := range queued {
			q, err := e.QueueEvent()
			if err == nil {
				err = publish(ctx, q)
			}
			if err != nil {
				log.Error().Err(err).Str("event", e.ID).Msg("chat webhook event not stored; the platform will retry")
				http.Error(w, "event not stored, retry", http.StatusServiceUnavailable)
				return
			}
			log.Debug().Str("event", e.ID).Str("kind", string(e.Kind)).Msg("chat webhook event queued")
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(answer)
	})
}

// StatusFor is the HTTP status a webhook error is answered with.
func StatusFor(err error) int {
	var tooBig *http.MaxBytesError
	switch {
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

// CheckBearer authenticates a request by "Authorization: Bearer <secret>" in constant time.
// An empty secret refuses every request.
func CheckBearer(r *http.Request, secret string) error {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !sameSecret(strings.TrimSpace(got), secret) {
		return fmt.Errorf("%w: no valid Bearer token", ErrUnauthorized)
	}
	return nil
}

// CheckPathSecret authenticates a request by a secret in its URL: the {secret} path
// value when the route has one, otherwise the last path segment. An empty secret refuses
// every request.
func CheckPathSecret(r *http.Request, secret string) error {
	got := r.PathValue("secret")
	if got == "" && r.URL != nil {
		p := strings.TrimSuffix(r.URL.Path, "/")
		got = p[strings.LastIndexByte(p, '/')+1:]
	}
	if !sameSecret(got, secret) {
		return fmt.Errorf("%w: the URL does not end with the webhook secret", ErrUnauthorized)
	}
	return nil
}

func sameSecret(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// ReadWebhook is the prologue of every adapter's ParseWebhook: it authenticates the
// request with auth (CheckBearer, CheckPathSecret), requires a POST and reads the body.
// Errors name the platform and wrap ErrUnauthorized or ErrBadWebhook.
func ReadWebhook(r *http.Request, p PlatformName, auth func(*http.Request) error) ([]byte, error) {
	if err := auth(r); err != nil {
		return nil, fmt.Errorf("%s webhook: %w", p, err)
	}
	if r.Method != http.MethodPost {
		return nil, fmt.Errorf("%s webhook: %w: method %s, want POST", p, ErrBadWebhook, r.Method)
	}
	body, err := ReadBody(r)
	if err != nil {
		return nil, fmt.Errorf("%s webhook: %w", p, err)
	}
	return body, nil
}

// DecodeOne decodes a body that must be exactly one JSON value into v; anything else is
// an ErrBadWebhook naming the platform.
func DecodeOne(body []byte, p PlatformName, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s webhook: %w: %w", p, ErrBadWebhook, err)
	}
	if dec.More() {
		return fmt.Errorf("%s webhook: %w: more than one JSON value", p, ErrBadWebhook)
	}
	return nil
}

// ReadBody reads a webhook body up to MaxWebhookBody; a longer or unreadable body is an
// ErrBadWebhook.
func ReadBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, fmt.Errorf("%w: empty body", ErrBadWebhook)
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, MaxWebhookBody+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read body: %w", ErrBadWebhook, err)
	}
	if len(b) > MaxWebhookBody {
		return nil, fmt.Errorf("%w: body is larger than %d bytes", ErrBadWebhook, MaxWebhookBody)
	}
	return b, nil
}
