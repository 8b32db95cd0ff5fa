package callcard_test

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/crm/amocrm"
	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
	"github.com/crmlink/crmlink/routing/callcard"
)

// TestCardsShareTheBudget: background writes saturate the account's 7 requests a second;
// call-path lookups still go first, cards next, and a card the budget cannot send within
// its 2 s is dropped and counted, never sent late.
func TestCardsShareTheBudget(t *testing.T) {
	seed, err := sandbox.LoadSeed("../../crm/amocrm/sandbox/testdata/seed.yaml")
	require.NoError(t, err)
	sb := sandbox.New(seed, sandbox.WithRateLimit(7))
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	t.Cleanup(sb.Close)
	c, err := amocrm.New(amocrm.Options{BaseURL: srv.URL, Token: sandbox.DefaultToken, RateLimit: 7, CallReserve: 2})
	require.NoError(t, err)

	// Background: notes written back to back by forty workers, for as long as the test.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				_ = c.AddTextNote(ctx, crm.EntityContact, 2001, "background")
			}
		}()
	}
	defer func() { stop(); wg.Wait() }()
	time.Sleep(1500 * time.Millisecond) // the budget is saturated by now

	const fresh = 2 * time.Second
	cards := callcard.New(c, callcard.Options{Fresh: fresh, Region: "RU", Logger: zerolog.Nop()})
	ring := time.Now()
	const waves = 15
	for i := range waves {
		cards.Wave(callcard.Ring{Call: string(rune('a' + i)), Caller: "84951234567", Users: []crm.UserID{1001}, At: ring})
	}
	// A cold owner lookup arrives while the cards wait.
	time.Sleep(20 * time.Millisecond)
	begin := time.Now()
	_, err = c.CallPath().FindContactsByPhone(context.Background(), "+74951234567")
	require.NoError(t, err)
	lookup := time.Since(begin)
	assert.Less(t, lookup, 300*time.Millisecond, "the call path's lookup does not wait behind cards or writes")

	require.Eventually(t, func() bool { s := cards.Stats(); return s.Sent+s.Dropped+s.Failed == waves }, 5*time.Second, 10*time.Millisecond)
	s := cards.Stats()
	t.Logf("lookup %v; cards sent %d, dropped %d; notes written meanwhile %d", lookup, s.Sent, s.Dropped, len(sb.Created().Notes))
	assert.Zero(t, s.Failed)
	assert.Positive(t, s.Dropped, "more cards than the budget sends in 2 s: some dropped")
	assert.GreaterOrEqual(t, s.Sent, int64(9), "cards go before background writes: what the budget allows them in 2 s (6 a window)")
	events := sb.CallEvents()
	assert.Len(t, events, int(s.Sent))
	for _, e := range events {
		assert.LessOrEqual(t, e.At.Sub(ring), fresh+100*time.Millisecond, "no card arrives late")
	}
	assert.Zero(t, sb.RateLimited(), "the budget is kept: amoCRM refused nothing")
}
