package httpapi

import (
	"context"
	"crypto/subtle"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/crm/amocrm"
)

// ResponsibleApplier takes responsible changes reported by the CRM (the router's cache).
type ResponsibleApplier interface {
	ApplyResponsibleChange(ctx context.Context, ch crm.ResponsibleChange) error
}

// maxWebhookBody bounds a webhook body; amoCRM's are a few kilobytes.
const maxWebhookBody = 1 << 20

// ChangeEnqueuer stores a responsible change durably for the chat sync (nil: no chat sync).
type ChangeEnqueuer func(ctx context.Context, ch crm.ResponsibleChange) error

// AmoCRMWebhook handles POST /v1/webhooks/amocrm/{secret}: amoCRM's form-encoded webhooks.
// The secret in the path authenticates amoCRM (it cannot send a header of ours). The cache
// is updated before the answer, so the very next call already goes to the new manager;
// amoCRM waits at most 2 s, so the work is bounded well below that. With enqueue set, each
// change is also queued for the chat sync; a change that cannot be stored is answered 503,
// so amoCRM delivers it again.
func AmoCRMWebhook(secret string, apply ResponsibleApplier, enqueue ChangeEnqueuer, log zerolog.Logger) http.Handler {
	log = log.With().Str("component", "amocrm-webhook").Logger()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if secret == "" || subtle.ConstantTimeCompare([]byte(r.PathValue("secret")), []byte(secret)) != 1 {
			log.Warn().Str("remote", r.RemoteAddr).Msg("rejected webhook: wrong secret in the URL")
			WriteError(w, http.StatusUnauthorized, "unknown webhook URL")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxWebhookBody)
		if err := r.ParseForm(); err != nil {
			log.Warn().Err(err).Msg("rejected webhook: body is not form-encoded")
			WriteError(w, http.StatusBadRequest, "body must be application/x-www-form-urlencoded")
			return
		}
		changes, acc, err := amocrm.ParseWebhook(r.PostForm)
		if err != nil {
			log.Warn().Err(err).Msg("rejected webhook: not an amoCRM webhook")
			WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 1500*time.Millisecond)
		defer cancel()
		for _, ch := range changes {
			if enqueue != nil {
				if err := enqueue(ctx, ch); err != nil {
					log.Error().Err(err).Str("entity", string(ch.Entity)).Int64("id", ch.ID).Msg("responsible change not queued for the chat sync; amoCRM will retry")
					WriteError(w, http.StatusServiceUnavailable, "change not stored, retry")
					return
				}
			}
			if err := apply.ApplyResponsibleChange(ctx, ch); err != nil {
				log.Error().Err(err).Str("entity", string(ch.Entity)).Int64("id", ch.ID).Msg("apply responsible change")
				continue
			}
			log.Info().Str("account", acc.Subdomain).Str("entity", string(ch.Entity)).Int64("id", ch.ID).
				Int64("responsible", int64(ch.Responsible)).Int64("old_responsible", int64(ch.OldResponsible)).
				Msg("responsible changed in amoCRM; routing updated")
		}
		w.WriteHeader(http.StatusOK)
	})
}
