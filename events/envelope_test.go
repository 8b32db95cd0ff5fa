package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/events"
	"github.com/crmlink/crmlink/routing"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func TestCRMChangeQueueRoundTrip(t *testing.T) {
	const ann, bob, person crm.UserID = 11, 12, 55
	ch := crm.ResponsibleChange{Entity: crm.EntityLead, ID: 601, Responsible: bob, OldResponsible: ann, ModifiedBy: person, At: t0}
	q, err := events.CRMChanges.Encode(events.CRMChange(ch))
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("crm:lead:601:12:%d", t0.UnixMilli()), q.ID)
	assert.Equal(t, events.KindCRMChange, q.Kind)
	assert.JSONEq(t, `{"entity":"lead","id":601,"responsible":12,"old_responsible":11,"modified_by":55,"at":"2026-03-02T10:00:00Z"}`, string(q.Payload))
	back, err := events.CRMChanges.Decode(q)
	require.NoError(t, err)
	assert.Equal(t, ch, crm.ResponsibleChange(back))
	_, err = events.CRMChanges.Encode(events.CRMChange{Entity: crm.EntityLead})
	assert.Error(t, err)
}

// The call outcome's stored kind and JSON are what the queue already holds: a crmlink
// that starts on an old queue reads its events.
func TestCallOutcomeEnvelope(t *testing.T) {
	calls := events.CallOutcomes(crm.NewPhoneMemo("RU"))
	o := routing.CallOutcome{ID: "1700000000.1", Direction: routing.Incoming, Caller: "8 916 123-45-67", Called: "200", Answered: true, Start: t0}
	e, err := calls.Encode(o)
	require.NoError(t, err)
	assert.Equal(t, events.Envelope{ID: "1700000000.1", Kind: "call_outcome", Key: "phone:+79161234567", Payload: e.Payload}, e)
	old, err := json.Marshal(o) // what the queue has always stored
	require.NoError(t, err)
	assert.JSONEq(t, string(old), string(e.Payload))
	back, err := calls.Decode(e)
	require.NoError(t, err)
	assert.Equal(t, o, back)
}

// The dispatcher decodes each envelope once and calls its kind's handler; what it cannot
// hand to anybody is dead-lettered, and a drop is acknowledged.
func TestDispatcher(t *testing.T) {
	d := events.NewDispatcher(zerolog.Nop())
	var got []events.CRMChange
	failure := errors.New("amoCRM answered 503")
	events.On(d, events.CRMChanges, func(_ context.Context, c events.CRMChange) error {
		switch c.ID {
		case 2:
			return failure
		case 3:
			return events.Dropped("chat.crm_to_chat is off")
		}
		got = append(got, c)
		return nil
	})
	change := func(id int64) events.Envelope {
		e, err := events.CRMChanges.Encode(events.CRMChange{Entity: crm.EntityContact, ID: id, Responsible: 7, At: t0})
		require.NoError(t, err)
		return e
	}
	ctx := context.Background()
	require.NoError(t, d.Handle(ctx, change(1)))
	assert.Equal(t, []events.CRMChange{{Entity: crm.EntityContact, ID: 1, Responsible: 7, At: t0}}, got)

	err := d.Handle(ctx, change(2))
	assert.ErrorIs(t, err, failure)
	assert.Equal(t, events.Retry, events.Classify(err))
	assert.NoError(t, d.Handle(ctx, change(3)), "a drop is acknowledged")

	for name, e := range map[string]events.Envelope{
		"no handler for the kind": {ID: "x", Kind: events.KindCallOutcome, Payload: []byte(`{}`)},
		"not JSON":                {ID: "y", Kind: events.KindCRMChange, Payload: []byte(`{`)},
		"no entity":               {ID: "z", Kind: events.KindCRMChange, Payload: []byte(`{"id":4}`)},
	} {
		err := d.Handle(ctx, e)
		assert.Equal(t, events.DeadLetter, events.Classify(err), "%s: %v", name, err)
	}
	assert.Len(t, got, 1)
}
