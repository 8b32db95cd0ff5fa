package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/events"
)

// fakeInbound is an adapter whose parse result the test chooses.
type fakeInbound struct {
	events []chatbridge.Event
	err    error
}

func (f fakeInbound) Name() chatbridge.PlatformName { return chatbridge.ChatApp }
func (f fakeInbound) ParseWebhook(r *http.Request) ([]chatbridge.Event, error) {
	_, _ = io.ReadAll(r.Body)
	return f.events, f.err
}

func TestChatWebhook(t *testing.T) {
	ev := chatbridge.Event{ID: "e1", Platform: chatbridge.ChatApp, Kind: chatbridge.EventMessage, At: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
	tests := []struct {
		name       string
		in         fakeInbound
		publishErr error
		body       string
		wantStatus int
		wantStored int
	}{
		{"events stored", fakeInbound{events: []chatbridge.Event{ev, ev}}, nil, "{}", 200, 2},
		{"nothing to store", fakeInbound{}, nil, "{}", 200, 0},
		{"wrong secret", fakeInbound{err: fmt.Errorf("x: %w", chatbridge.ErrUnauthorized)}, nil, "{}", 401, 0},
		{"garbage", fakeInbound{err: fmt.Errorf("x: %w", chatbridge.ErrBadWebhook)}, nil, "{", 400, 0},
		{"queue down", fakeInbound{events: []chatbridge.Event{ev}}, errors.New("redis: connection refused"), "{}", 503, 0},
		{"event without kind", fakeInbound{events: []chatbridge.Event{{ID: "e2", Platform: chatbridge.ChatApp}}}, nil, "{}", 503, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stored []events.Envelope
			publish := func(ctx context.Context, e events.Envelope) error {
				deadline, ok := ctx.Deadline()
				require.True(t, ok)
				assert.WithinDuration(t, time.Now().Add(chatWebhookDeadline), deadline, time.Second)
				if tt.publishErr != nil {
					return tt.publishErr
				}
				stored = append(stored, e)
				return nil
			}
			var logs strings.Builder
			h := ChatWebhook(tt.in, publish, nil, zerolog.New(&logs))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/chat/chatapp/s", strings.NewReader(tt.body)))
			assert.Equal(t, tt.wantStatus, rec.Code)
			assert.Len(t, stored, tt.wantStored)
			if tt.wantStatus != 200 {
				assert.NotEmpty(t, logs.String(), "a refused webhook leaves a log line")
			} else {
				assert.JSONEq(t, `{"result":"ok"}`, rec.Body.String())
			}
		})
	}
}

func TestChatWebhookStatus(t *testing.T) {
	assert.Equal(t, http.StatusUnauthorized, ChatWebhookStatus(fmt.Errorf("x: %w", chatbridge.ErrUnauthorized)))
	assert.Equal(t, http.StatusBadRequest, ChatWebhookStatus(fmt.Errorf("x: %w", chatbridge.ErrBadWebhook)))
	assert.Equal(t, http.StatusRequestEntityTooLarge, ChatWebhookStatus(&http.MaxBytesError{Limit: 1}))
}
