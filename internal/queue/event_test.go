package queue

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm/amocrm"
	"github.com/crmlink/crmlink/events"
)

// A validation refusal needs no marker: the queue classes handler errors with
// events.Classify, so amoCRM's 400 (and a chat platform's) is dead at the first attempt,
// and the dead letter says it was permanent.
func TestValidationRefusalGoesToDeadLettersAtOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		q := open(t, fastOptions(t))
		rec := newRecorder(func(context.Context, Event) error {
			return fmt.Errorf("rules: outcome ev: lead: POST /api/v4/leads: %w", &amocrm.ValidationError{Status: 400, Title: "Bad Request"})
		})
		startRun(t, q, rec.handle)
		require.NoError(t, q.Publish(context.Background(), event("ev", nil)))
		waitStats(t, q, "event dead", func(s Stats) bool { return s.Dead == 1 && s.InFlight == 0 })
		assert.Len(t, rec.callsOf("ev"), 1)
		dead := deadList(t, q)
		require.Len(t, dead, 1)
		assert.Equal(t, "permanent: rules: outcome ev: lead: POST /api/v4/leads: status 400: Bad Request", dead[0].LastError)
	})
}

// The order key its producer stored comes back with the event from either store, so the
// consumer orders by it without decoding the payload.
func TestStoredOrderKeyComesBack(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		o := fastOptions(t)
		var mu sync.Mutex
		var keys []string
		o.OrderKey = func(e Event) string {
			mu.Lock()
			defer mu.Unlock()
			keys = append(keys, e.Key)
			return e.Key
		}
		q := open(t, o)
		rec := newRecorder(func(context.Context, Event) error { return nil })
		startRun(t, q, rec.handle)
		e := EventOf(events.Envelope{ID: "c1", Kind: events.KindCallOutcome, Key: "phone:+79161234567", Payload: []byte(`{}`)})
		require.NoError(t, q.Publish(context.Background(), e))
		waitStats(t, q, "handled", func(s Stats) bool { return s.Processed == 1 })
		require.Len(t, rec.callsOf("c1"), 1)
		assert.Equal(t, "phone:+79161234567", rec.callsOf("c1")[0].Key)
		assert.Equal(t, events.Envelope{ID: "c1", Kind: events.KindCallOutcome, Key: "phone:+79161234567", Payload: []byte(`{}`)}, rec.callsOf("c1")[0].Envelope())
		mu.Lock()
		defer mu.Unlock()
		assert.Equal(t, []string{"phone:+79161234567"}, keys)
	})
}
