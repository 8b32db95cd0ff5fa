package scenarios_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/routing"
	"github.com/crmlink/crmlink/scenarios"
	"github.com/crmlink/crmlink/scenarios/scenariotest"
)

// TestErrors: outcomes no retry can fix are permanent (the queue dead-letters them); CRM
// and State failures are wrapped and worth a retry.
func TestErrors(t *testing.T) {
	tests := []struct {
		name      string
		outcome   func(o *routing.CallOutcome)
		setup     func(e *env)
		permanent bool
		is        error
		msg       string
	}{
		{name: "no id", outcome: func(o *routing.CallOutcome) { o.ID = "" }, permanent: true, is: scenarios.ErrInvalidOutcome,
			msg: "invalid call outcome: no id (the Asterisk linkedid is the idempotency key)"},
		{name: "no direction", outcome: func(o *routing.CallOutcome) { o.Direction = "" }, permanent: true, is: scenarios.ErrInvalidOutcome,
			msg: `invalid call outcome e1: direction is ""; allowed: incoming, outgoing`},
		{
			name:  "CRM down on the lookup",
			setup: func(e *env) { e.crm.FailRead = scenariotest.FailOnce(1, scenariotest.ErrInjected) },
			is:    crm.ErrUnavailable,
			msg:   "rules: find contacts of +79161234567: fake CRM FindContactsByPhone: injected CRM failure: CRM unavailable",
		},
		{
			name:  "CRM rate limit on a write",
			setup: func(e *env) { e.crm.FailWrite = scenariotest.FailOnce(1, crm.ErrRateLimited) },
			is:    crm.ErrRateLimited,
			msg:   "rules: outcome e1: contact: fake CRM CreateContacts: CRM rate limit exceeded (429)",
		},
		{
			name: "stored plan unreadable",
			setup: func(e *env) {
				require.NoError(t, e.state.Save(context.Background(), "call:e1:plan", []byte("{garbage"), time.Hour))
			},
			permanent: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, scenarios.Defaults())
			if tt.setup != nil {
				tt.setup(e)
			}
			o := incoming("e1", false)
			if tt.outcome != nil {
				tt.outcome(&o)
			}
			_, err := e.eng.HandleCall(context.Background(), o)
			require.Error(t, err)
			assert.Equal(t, tt.permanent, errors.Is(err, scenarios.ErrPermanent), "permanent: %v", err)
			if tt.is != nil {
				assert.ErrorIs(t, err, tt.is)
			}
			if tt.msg != "" {
				assert.EqualError(t, err, tt.msg)
			}
			assert.True(t, e.crm.Created().Empty())
		})
	}
}

func TestPermanent(t *testing.T) {
	assert.NoError(t, scenarios.Permanent(nil))
	base := errors.New("schema mismatch")
	err := scenarios.Permanent(base)
	assert.ErrorIs(t, err, scenarios.ErrPermanent)
	assert.ErrorIs(t, err, base)
	assert.EqualError(t, err, "schema mismatch")
	assert.ErrorIs(t, scenarios.ErrInvalidOutcome, scenarios.ErrPermanent)
	assert.NotErrorIs(t, crm.ErrUnavailable, scenarios.ErrPermanent)
}
