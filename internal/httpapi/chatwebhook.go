package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/events"
)

// chatWebhookDeadline is how long ChatWebhook may take before answering: Jivo and amoCRM
// wait 2 s, Wazzup 30 s; the handler only parses and enqueues.
const chatWebhookDeadline = 1500 * time.Millisecond

// entityDeadline bounds making an entity a webhook asks for (two CRM requests at most);
// Wazzup waits 30 s for the answer.
const entityDeadline = 20 * time.Second

// ChatWebhook serves a platform's webhook: it parses and authenticates the request with
// the adapter, publishes every event to the queue and answers 200 once they are stored. A
// wrong secret is answered 401, a body that is not the platform's webhook 400 (both
// logged), a queue that cannot store the events 503 so the platform retries. A webhook
// that asks for a CRM entity (Wazzup's createContact, createDeal) is answered with the
// entity entities makes (nil: answered without it), or 503 when it could not be made.
// Register it under the path the platform calls, with a {secret} segment for platforms
// that authenticate by URL: "POST /v1/chat/chatapp/{secret}", "POST /v1/chat/wazzup".
func ChatWebhook(in chatbridge.Inbound, publish func(context.Context, events.Envelope) error, entities chatbridge.EntityMaker, log zerolog.Logger) http.Handler {
	log = log.With().Str("component", "chat-webhook").Str("platform", string(in.Name())).Logger()
	answerer, _ := in.(chatbridge.EntityAnswerer)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, chatbridge.MaxWebhookBody)
		events, err := in.ParseWebhook(r)
		if err != nil {
			status := ChatWebhookStatus(err)
			log.Warn().Err(err).Str("remote", r.RemoteAddr).Int("status", status).Msg("rejected chat webhook")
			http.Error(w, http.StatusText(status), status)
			return
		}
		var answer any = map[string]string{"result": "ok"}
		var queued []chatbridge.Event
		for _, e := range events {
			if !e.Kind.Wanted() {
				queued = append(queued, e)
				continue
			}
			if entities == nil || answerer == nil {
				log.Warn().Str("event", e.ID).Str("kind", string(e.Kind)).Msg("the platform asks for a CRM entity and crmlink makes none here; answered without it")
				continue
			}
			ectx, cancel := context.WithTimeout(r.Context(), entityDeadline)
			ent, err := entities.MakeEntity(ectx, e)
			cancel()
			if err != nil {
				status := http.StatusServiceUnavailable
				if errors.Is(err, chatbridge.ErrBadWebhook) {
					status = http.StatusBadRequest
				}
				log.Error().Err(err).Str("event", e.ID).Str("kind", string(e.Kind)).Int("status", status).Msg("the CRM entity a chat webhook asks for was not made")
				http.Error(w, http.StatusText(status), status)
				return
			}
			log.Info().Str("event", e.ID).Str("kind", string(e.Kind)).Str("entity", string(ent.Type)).Int64("id", ent.ID).Msg("chat webhook answered with a CRM entity")
			answer = answerer.AnswerEntity(e, ent)
		}
		ctx, cancel := context.WithTimeout(r.Context(), chatWebhookDeadline)
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

// ChatWebhookStatus is the HTTP status a chat adapter's webhook error is answered with.
func ChatWebhookStatus(err error) int {
	var tooBig *http.MaxBytesError
	switch {
	case errors.Is(err, chatbridge.ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}
