package callcard

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
)

type sent struct {
	phone crm.Phone
	users []crm.UserID
}

// fakeCRM records the cards; block makes it wait for the deadline as a spent budget does.
type fakeCRM struct {
	mu    sync.Mutex
	cards []sent
	block bool
	done  chan struct{}
}

func (f *fakeCRM) NotifyCall(ctx context.Context, phone crm.Phone, users []crm.UserID) error {
	defer func() { f.done <- struct{}{} }()
	if f.block {
		<-ctx.Done()
		return ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cards = append(f.cards, sent{phone, users})
	return nil
}

func newFake(block bool) *fakeCRM { return &fakeCRM{block: block, done: make(chan struct{}, 16)} }

func (f *fakeCRM) wait(t *testing.T) {
	t.Helper()
	select {
	case <-f.done:
	case <-time.After(3 * time.Second):
		t.Fatal("no card attempted")
	}
}

func TestCards(t *testing.T) {
	tests := []struct {
		name  string
		block bool
		rings func(c *Cards, now time.Time)
		want  []sent
		stats Stats
	}{
		{
			name: "a controller wave: one card for the owner",
			rings: func(c *Cards, now time.Time) {
				c.Wave(Ring{Call: "a", Caller: "84951000001", Users: []crm.UserID{1001}, At: now})
			},
			want:  []sent{{"+74951000001", []crm.UserID{1001}}},
			stats: Stats{Sent: 1},
		},
		{
			name: "an observed Dial of two phones: one card naming both managers",
			rings: func(c *Cards, now time.Time) {
				c.Ringing(Ring{Call: "b", Caller: "+74951000002", Users: []crm.UserID{1002}, At: now})
				c.Ringing(Ring{Call: "b", Caller: "+74951000002", Users: []crm.UserID{1003}, At: now})
				c.Ringing(Ring{Call: "b", Caller: "+74951000002", Users: []crm.UserID{1002}, At: now})
			},
			want:  []sent{{"+74951000002", []crm.UserID{1002, 1003}}},
			stats: Stats{Sent: 1},
		},
		{
			name:  "the budget is spent until after the freshness bound: dropped and counted",
			block: true,
			rings: func(c *Cards, now time.Time) {
				c.Wave(Ring{Call: "c", Caller: "84951000003", Users: []crm.UserID{1001}, At: now})
			},
			stats: Stats{Dropped: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(tt.block)
			c := New(f, Options{Fresh: 200 * time.Millisecond, Gather: 20 * time.Millisecond, Region: "RU", Logger: zerolog.Nop()})
			tt.rings(c, time.Now())
			f.wait(t)
			f.mu.Lock()
			assert.Equal(t, tt.want, f.cards)
			f.mu.Unlock()
			require.Eventually(t, func() bool { return c.Stats() == tt.stats }, time.Second, 5*time.Millisecond)
			select {
			case <-f.done:
				t.Fatal("a second card for one wave")
			case <-time.After(50 * time.Millisecond):
			}
		})
	}
}

func TestCardsIgnoreNobodyAndWithheldNumbers(t *testing.T) {
	f := newFake(false)
	c := New(f, Options{Gather: 10 * time.Millisecond, Region: "RU"})
	c.Wave(Ring{Call: "x", Caller: "84951000001", At: time.Now()})
	c.Wave(Ring{Call: "y", Caller: "anonymous", Users: []crm.UserID{1}, At: time.Now()})
	f2 := func() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.cards) }
	time.Sleep(50 * time.Millisecond)
	assert.Zero(t, f2())
	assert.Equal(t, Stats{}, c.Stats())
}
