package amocrm

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
)

// TestNotifyCall: the card is one POST /api/v2/events per call of NotifyCall, naming the
// number and the users; the sandbox shows the contact of the number, as amoCRM would.
func TestNotifyCall(t *testing.T) {
	sb, url := startSandbox(t)
	c := newClient(t, url, nil)
	require.NoError(t, c.NotifyCall(context.Background(), "+74951234567", []crm.UserID{1001, 1002}))
	require.NoError(t, c.NotifyCall(context.Background(), "+79990000000", []crm.UserID{1001}))

	events := sb.CallEvents()
	require.Len(t, events, 2)
	assert.Equal(t, "+74951234567", events[0].PhoneNumber)
	assert.Equal(t, []int64{1001, 1002}, events[0].Users)
	assert.Equal(t, int64(2001), events[0].ElementID, "the contact with the number")
	assert.Zero(t, events[1].ElementID, "an unknown number: amoCRM offers to create a contact")
	assert.Equal(t, 2, sb.Requests("POST /api/v2/events"))

	err := c.NotifyCall(context.Background(), "+74951234567", []crm.UserID{999999})
	var ve *ValidationError
	require.True(t, errors.As(err, &ve), "an unknown user is refused: %v", err)
	assert.Error(t, c.NotifyCall(context.Background(), "+74951234567", nil), "nobody to notify")
}

// TestNotifyCallNeverLate: with the budget spent, a card whose deadline comes before the
// next slot is not sent at all.
func TestNotifyCallNeverLate(t *testing.T) {
	sb, url := startSandbox(t)
	c := newClient(t, url, func(o *Options) { o.RateLimit = 2 })
	for range 2 {
		_, err := c.Users(context.Background())
		require.NoError(t, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := c.NotifyCall(ctx, "+74951234567", []crm.UserID{1001})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Empty(t, sb.CallEvents(), "not sent late")
}
