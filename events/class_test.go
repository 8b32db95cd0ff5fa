package events_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/crm/amocrm"
	"github.com/crmlink/crmlink/events"
	"github.com/crmlink/crmlink/scenarios"
)

// statusError stands for a chat platform's answer (apiclient.StatusError, which
// chatbridge/internal/apiclient tests against a real server).
type statusError int

func (s statusError) Error() string   { return fmt.Sprintf("status %d", int(s)) }
func (s statusError) HTTPStatus() int { return int(s) }

func TestClassify(t *testing.T) {
	rejected := fmt.Errorf("rules: outcome c1: note: POST /api/v4/leads/notes: %w", &amocrm.ValidationError{Status: 400, Title: "Bad Request"})
	tests := []struct {
		name string
		err  error
		want events.Class
	}{
		{"no error", nil, events.Done},
		{"a CRM that is down", fmt.Errorf("rules: find contacts: %w", crm.ErrUnavailable), events.Retry},
		{"amoCRM's 429", fmt.Errorf("GET /api/v4/contacts: %w after 4 retries", crm.ErrRateLimited), events.Retry},
		{"refused credentials", crm.ErrUnauthorized, events.Retry},
		{"a deleted entity", fmt.Errorf("PATCH /api/v4/leads/7: %w", crm.ErrNotFound), events.Retry},
		{"a timeout", fmt.Errorf("chatbridge: contact 3: %w", context.DeadlineExceeded), events.Retry},
		{"amoCRM's validation refusal", rejected, events.DeadLetter},
		{"a CRM refusal without a status (a fake CRM)", fmt.Errorf("x: %w", crm.ErrRejected), events.DeadLetter},
		{"marked by the rules engine", fmt.Errorf("call c1: %w", scenarios.ErrInvalidOutcome), events.DeadLetter},
		{"marked", events.Permanent(errors.New("stored plan unreadable")), events.DeadLetter},
		{"marked, wrapping a retryable error", events.Permanent(crm.ErrUnavailable), events.DeadLetter},
		{"a chat platform's 400", fmt.Errorf("wazzup POST /v3/contacts: %w", statusError(400)), events.DeadLetter},
		{"a chat platform's 422", fmt.Errorf("chatapp PUT /v1/chats: %w", statusError(422)), events.DeadLetter},
		{"a chat platform's 401", statusError(401), events.Retry},
		{"a chat platform's 403", statusError(403), events.Retry},
		{"a chat platform's 404", statusError(404), events.Retry},
		{"a chat platform's 429", statusError(429), events.Retry},
		{"a chat platform's 502", statusError(502), events.Retry},
		{"a drop", fmt.Errorf("jivo: %w", events.Dropped("chat.leads is off")), events.Drop},
		{"several writes, one worth a retry", errors.Join(statusError(400), fmt.Errorf("chatapp: %w", statusError(503))), events.Retry},
		{"several writes, all refused", errors.Join(statusError(400), rejected), events.DeadLetter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, events.Classify(tt.err), "%v", tt.err)
		})
	}
}

// The errors the real amoCRM client returns for each answer class the same way as a chat
// platform's answer with that status.
func TestClassifyAmoCRMAnswers(t *testing.T) {
	for _, tt := range []struct {
		status int
		want   events.Class
	}{
		{400, events.DeadLetter}, {422, events.DeadLetter},
		{401, events.Retry}, {403, events.Retry}, {404, events.Retry}, {429, events.Retry},
		{500, events.Retry}, {503, events.Retry},
	} {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(`{"title":"Bad Request","detail":"Request validation failed"}`))
			}))
			defer srv.Close()
			c, err := amocrm.New(amocrm.Options{BaseURL: srv.URL, Token: "t", RateLimit: 1000})
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_, err = c.Contact(ctx, 1)
			require.Error(t, err)
			assert.Equal(t, tt.want, events.Classify(err), "%v", err)
			assert.Equal(t, tt.want, events.ClassOfStatus(tt.status))
		})
	}
	t.Run("no answer", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		c, err := amocrm.New(amocrm.Options{BaseURL: srv.URL, Token: "t", RateLimit: 1000})
		require.NoError(t, err)
		_, err = c.Contact(context.Background(), 1)
		require.Error(t, err)
		assert.Equal(t, events.Retry, events.Classify(err), "%v", err)
	})
}
