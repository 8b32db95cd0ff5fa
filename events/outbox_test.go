package events_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/events"
	"github.com/crmlink/crmlink/routing"
)

// The outbox hands a finished call to the store encoded once with the client's order key,
// after the observer saw it; without a store (no CRM) the observer alone sees it; a store
// that fails leaves the whole outcome in the log, for an operator to enter again.
func TestOutboxCallOutcome(t *testing.T) {
	o := routing.CallOutcome{ID: "1764.1", Direction: routing.Incoming, Caller: "+79161234567", Called: "200", Answered: true}
	calls := events.CallOutcomes(crm.NewPhoneMemo("RU"))
	var seen []string
	observe := func(out routing.CallOutcome) { seen = append(seen, out.ID) }

	var stored []events.Envelope
	box := events.NewOutbox(observe, zerolog.Nop())
	box.CallOutcome(o)
	assert.Equal(t, []string{"1764.1"}, seen, "no store yet: observed, nothing else")

	box.Open(calls, func(_ context.Context, e events.Envelope) error { stored = append(stored, e); return nil })
	box.CallOutcome(o)
	require.Len(t, stored, 1)
	assert.Equal(t, "1764.1", stored[0].ID)
	assert.Equal(t, events.KindCallOutcome, stored[0].Kind)
	assert.Equal(t, events.PhoneKey("+79161234567"), stored[0].Key)
	back, err := calls.Decode(stored[0])
	require.NoError(t, err)
	assert.Equal(t, o, back)

	var log bytes.Buffer
	failing := events.NewOutbox(nil, zerolog.New(&log))
	failing.Open(calls, func(context.Context, events.Envelope) error { return errors.New("disk full") })
	failing.CallOutcome(o)
	assert.Contains(t, log.String(), "call outcome NOT queued")
	assert.Contains(t, log.String(), `"caller":"+79161234567"`, "the whole outcome is in the log")
}

// A responsible change amoCRM reported is stored encoded as CRMChanges, and a change no
// handler could act on is refused before it is stored.
func TestOutboxCRMChange(t *testing.T) {
	var stored []events.Envelope
	box := events.NewOutbox(nil, zerolog.Nop())
	box.Open(events.CallOutcomes(crm.NewPhoneMemo("RU")), func(_ context.Context, e events.Envelope) error { stored = append(stored, e); return nil })
	ch := crm.ResponsibleChange{Entity: crm.EntityLead, ID: 601, Responsible: 12, At: t0}
	require.NoError(t, box.CRMChange(context.Background(), ch))
	require.Len(t, stored, 1)
	back, err := events.CRMChanges.Decode(stored[0])
	require.NoError(t, err)
	assert.Equal(t, ch, crm.ResponsibleChange(back))

	assert.Error(t, box.CRMChange(context.Background(), crm.ResponsibleChange{Entity: crm.EntityLead}))
	assert.Len(t, stored, 1)
}
