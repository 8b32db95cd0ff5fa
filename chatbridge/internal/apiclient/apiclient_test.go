package apiclient_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/chatbridge"
	"github.com/crmlink/crmlink/chatbridge/internal/apiclient"
	"github.com/crmlink/crmlink/events"
)

// A chat platform's answer makes of an event what amoCRM's answer with the same status
// makes (events.TestClassifyAmoCRMAnswers): its validation refusal is dead-lettered at
// once, everything else is retried.
func TestAnswersClassLikeAmoCRMs(t *testing.T) {
	for _, tt := range []struct {
		status int
		kind   error
		want   events.Class
	}{
		{400, chatbridge.ErrRejected, events.DeadLetter},
		{422, chatbridge.ErrRejected, events.DeadLetter},
		{401, chatbridge.ErrUnauthorized, events.Retry},
		{403, chatbridge.ErrUnauthorized, events.Retry},
		{404, chatbridge.ErrNotFound, events.Retry},
		{429, chatbridge.ErrRateLimited, events.Retry},
		{500, chatbridge.ErrUnavailable, events.Retry},
		{503, chatbridge.ErrUnavailable, events.Retry},
	} {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(`{"error":"validation"}`))
			}))
			defer srv.Close()
			c, err := apiclient.New(chatbridge.Wazzup, srv.URL, "Bearer k", nil, 0)
			require.NoError(t, err)
			err = c.Do(context.Background(), http.MethodPatch, "/v3/contacts", nil, map[string]string{"responsibleUserId": "x"}, nil)
			require.Error(t, err)
			assert.ErrorIs(t, err, tt.kind)
			assert.Equal(t, tt.want, events.Classify(err), "%v", err)
		})
	}
	t.Run("no answer", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		c, err := apiclient.New(chatbridge.Wazzup, srv.URL, "Bearer k", nil, 0)
		require.NoError(t, err)
		err = c.Do(context.Background(), http.MethodGet, "/v3/users", nil, nil, nil)
		assert.ErrorIs(t, err, chatbridge.ErrUnavailable)
		assert.Equal(t, events.Retry, events.Classify(err), "%v", err)
	})
}
