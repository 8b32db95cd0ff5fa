package amocrm

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/internal/testrig"
)

// budgetOn builds a shared budget on its own Redis client (through addr, database db) for
// one of instances instances with the default amoCRM budget.
func budgetOn(t *testing.T, addr string, db, instances int) *sharedBudget {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, DB: db, MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rdb.Close() })
	s := newBudget(t, rdb, instances, newLimiter(rateWindow(DefaultRateLimit, DefaultRateMargin)).reserveForCalls(2))
	return s
}

// grantLog records when each request was let through, by instance.
type grantLog struct {
	mu sync.Mutex
	at []time.Time
	by map[string][]time.Time
}

func (g *grantLog) add(who string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	g.at = append(g.at, now)
	if g.by == nil {
		g.by = map[string][]time.Time{}
	}
	g.by[who] = append(g.by[who], now)
}

func (g *grantLog) count(who string, from, to time.Time) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, at := range g.by[who] {
		if !at.Before(from) && at.Before(to) {
			n++
		}
	}
	return n
}

// spend keeps asking s for slots (calls with the routing lookup's deadline, background
// work without one) until ctx ends, logging each slot under who.
func spend(ctx context.Context, wg *sync.WaitGroup, s *sharedBudget, who string, log *grantLog) {
	for i := range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				p, rctx, cancel := PriorityBackground, ctx, context.CancelFunc(func() {})
				if i%2 == 0 {
					p = PriorityCall
					rctx, cancel = context.WithTimeout(ctx, 1500*time.Millisecond)
				}
				err := s.wait(rctx, p)
				cancel()
				if err == nil && ctx.Err() == nil {
					log.add(who)
				}
				if err != nil && ctx.Err() == nil {
					time.Sleep(20 * time.Millisecond) // a refused call: the next call comes later
				}
			}
		})
	}
}

// budgetRig is one Redis database the instances of a test share, and a client to look
// into it.
type budgetRig struct {
	addr string
	db   int
	ctl  *redis.Client
}

func newBudgetRig(t *testing.T) *budgetRig {
	t.Helper()
	addr, db := testrig.RedisDB(t)
	ctl := redis.NewClient(&redis.Options{Addr: addr, DB: db})
	t.Cleanup(func() { _ = ctl.Close() })
	return &budgetRig{addr: addr, db: db, ctl: ctl}
}

// instance is one of instances instances on the rig's Redis, straight or through a proxy
// the test can cut (nil when straight).
func (r *budgetRig) instance(t *testing.T, instances int, cuttable bool) (*sharedBudget, *testrig.CutProxy) {
	t.Helper()
	if !cuttable {
		return budgetOn(t, r.addr, r.db, instances), nil
	}
	proxy := testrig.NewCutProxy(t, r.addr)
	return budgetOn(t, proxy.Addr(), r.db, instances), proxy
}

// waitSeen waits until n instances' heartbeats are in Redis.
func (r *budgetRig) waitSeen(t *testing.T, n int) {
	t.Helper()
	testrig.WaitFor(t, 5*time.Second, "every instance's heartbeat in Redis", func() bool {
		got, err := r.ctl.HLen(context.Background(), seenKeyOf(DefaultSharedBudgetKey)).Result()
		return err == nil && got == int64(n)
	})
}

// slotsOf takes n slots from s one after another, each within timeout, and returns when
// each was let through.
func slotsOf(t *testing.T, s *sharedBudget, n int, p Priority, timeout time.Duration) []time.Time {
	t.Helper()
	at := make([]time.Time, 0, n)
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		require.NoError(t, s.wait(ctx, p))
		cancel()
		at = append(at, time.Now())
	}
	return at
}

// burst asks s for the whole budget at once and counts the slots it gets within 300 ms.
func burst(s *sharedBudget, p Priority) int {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	n := 0
	for range DefaultRateLimit {
		if s.wait(ctx, p) == nil {
			n++
		}
	}
	return n
}

// Two instances share the account; one is cut off from Redis while both keep spending and
// comes back later. In no second do they together get more than 7 slots: the cut-off one
// spends its own share only once the other has stopped counting on it, the other leaves
// that share free meanwhile, and back on Redis the slots spent on its own count there.
// (On main the cut-off instance spent its share at once while the other kept all 7.)
func TestSharedBudgetHoldsTheRateWhileOneInstanceIsCutOff(t *testing.T) {
	rig := newBudgetRig(t)
	a, _ := rig.instance(t, 2, false)
	b, proxy := rig.instance(t, 2, true)
	rig.waitSeen(t, 2)

	var log grantLog
	var wg sync.WaitGroup
	ctx, stop := context.WithCancel(context.Background())
	spend(ctx, &wg, a, "a", &log)
	spend(ctx, &wg, b, "b", &log)
	time.Sleep(1500 * time.Millisecond)
	cut := time.Now()
	proxy.Cut()
	testrig.WaitFor(t, 2*time.Second, "b knows it is cut off", b.down.Load)
	time.Sleep(4 * time.Second)
	healed := time.Now()
	proxy.Heal()
	testrig.WaitFor(t, 3*time.Second, "b back on the shared budget", func() bool { return !b.down.Load() })
	back := time.Now()
	time.Sleep(3 * time.Second)
	stop()
	wg.Wait()

	log.mu.Lock()
	all := log.at
	log.mu.Unlock()
	for at := cut.Add(-1500 * time.Millisecond); at.Before(time.Now()); at = at.Add(500 * time.Millisecond) {
		t.Logf("%5v a %d b %d", at.Sub(cut).Round(time.Millisecond), log.count("a", at, at.Add(500*time.Millisecond)), log.count("b", at, at.Add(500*time.Millisecond)))
	}
	t.Logf("healed at %v", healed.Sub(cut))
	assert.LessOrEqual(t, maxInWindow(all, time.Second), DefaultRateLimit, "no second holds more than the account's rate")
	ownFrom := cut.Add(aliveFor + a.window + heartbeatEvery + heartbeatValid + clockSlack)
	assert.Positive(t, log.count("b", ownFrom, healed), "the cut-off instance spends its own share")
	assert.Positive(t, log.count("a", cut, healed), "the other keeps spending through Redis")
	assert.Positive(t, log.count("b", back.Add(time.Second), back.Add(3*time.Second)), "back on Redis, the instance spends there again")
}

// The peer has just taken the whole budget through Redis when the other instance is cut
// off: the cut-off one spends its own share only once those slots have left the window.
func TestSharedBudgetCutOffInstanceWaitsForThePeersSlots(t *testing.T) {
	rig := newBudgetRig(t)
	a, _ := rig.instance(t, 2, false)
	b, proxy := rig.instance(t, 2, true)
	rig.waitSeen(t, 2)
	at := slotsOf(t, a, DefaultRateLimit, PriorityCall, time.Minute)
	proxy.Cut()
	at = append(at, slotsOf(t, b, shareOf(DefaultRateLimit, 2), PriorityBackground, 5*time.Second)...)
	assert.True(t, b.down.Load(), "b spent its own share")
	assert.LessOrEqual(t, maxInWindow(at, time.Second), DefaultRateLimit)
}

// With peers, a call that finds Redis gone waits for it within its deadline rather than
// failing: a blip of Redis (here 300 ms) costs the call that long, and the lookup goes on.
func TestSharedBudgetCallRidesOutARedisBlip(t *testing.T) {
	rig := newBudgetRig(t)
	b, proxy := rig.instance(t, 2, true)
	rig.waitSeen(t, 1)
	proxy.Cut()
	testrig.WaitFor(t, 2*time.Second, "b knows it is cut off", b.down.Load)
	time.AfterFunc(300*time.Millisecond, proxy.Heal)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	require.NoError(t, b.wait(ctx, PriorityCall), "served through Redis once it answers")
	assert.Less(t, time.Since(start), time.Second)
	assert.False(t, b.down.Load())
}

// An instance alone that loses Redis mid-second falls back to the whole budget at once, but
// counts the slots it has just taken through Redis: 7 in that second, not 14.
func TestSharedBudgetAloneCountsWhatItTookThroughRedis(t *testing.T) {
	s, proxy := newBudgetRig(t).instance(t, 1, true)
	at := slotsOf(t, s, DefaultRateLimit, PriorityCall, time.Minute)
	require.False(t, s.down.Load(), "the first seven went through Redis")
	proxy.Cut()
	at = append(at, slotsOf(t, s, DefaultRateLimit, PriorityCall, 3*time.Second)...)
	assert.True(t, s.down.Load(), "the last seven were served without Redis")
	assert.LessOrEqual(t, maxInWindow(at, time.Second), DefaultRateLimit)
}

// A peer that stopped beating (dead, or cut off) keeps its share: the instance on Redis gets
// the rest, 7 - 3, background work 3 of them; once the peer beats again, all 7.
func TestSharedBudgetLeavesASilentPeersShareFree(t *testing.T) {
	rig := newBudgetRig(t)
	a, _ := rig.instance(t, 2, false)
	rig.waitSeen(t, 1)
	assert.Equal(t, 3, burst(a, PriorityBackground), "background work: the 4 left but one, the calls' reserve shrunk with them")
	assert.Equal(t, 1, burst(a, PriorityCall), "calls: the rest of the 4; the silent peer's 3 stay free")

	rig.instance(t, 2, false)
	rig.waitSeen(t, 2)
	time.Sleep(a.window) // the first burst's slots leave the window
	assert.Equal(t, DefaultRateLimit, burst(a, PriorityCall), "both beat: the whole budget is shared")
}

// Back on Redis, an instance writes the slots it spent on its own with its first heartbeat,
// so that the other instances count them.
func TestSharedBudgetWritesBackWhatItSpentOnItsOwn(t *testing.T) {
	rig := newBudgetRig(t)
	b, proxy := rig.instance(t, 2, true)
	rig.waitSeen(t, 1)
	proxy.Cut()
	testrig.WaitFor(t, 2*time.Second, "b knows it is cut off", b.down.Load)
	slotsOf(t, b, 2, PriorityCall, 3*time.Second)
	proxy.Heal()
	testrig.WaitFor(t, 3*time.Second, "b back on the shared budget", func() bool { return !b.down.Load() })
	members, err := rig.ctl.ZRange(context.Background(), DefaultSharedBudgetKey, 0, -1).Result()
	require.NoError(t, err)
	written := 0
	for _, m := range members {
		if strings.HasPrefix(m, b.id+"-r") {
			written++
		}
	}
	assert.Equal(t, 2, written, "the two slots spent without Redis are in the shared budget")
}

// A heartbeat that reaches Redis after its deadline (queued behind a stalled master, or a
// segment retransmitted after a partition heals) writes nothing: Redis never sees an
// instance later than the instance itself reckons.
func TestSharedBudgetRefusesALateHeartbeat(t *testing.T) {
	rdb := testrig.Redis(t)
	ctx := context.Background()
	now, err := rdb.Time(ctx).Result()
	require.NoError(t, err)
	res, err := heartbeatScript.Run(ctx, rdb, []string{DefaultSharedBudgetKey, seenKeyOf(DefaultSharedBudgetKey)},
		"late", now.Add(-time.Second).UnixMilli(), 1050, "late-r1", 10).Int64Slice()
	require.NoError(t, err)
	assert.EqualValues(t, 0, res[0], "refused")
	n, err := rdb.Exists(ctx, seenKeyOf(DefaultSharedBudgetKey), DefaultSharedBudgetKey).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "neither the heartbeat nor the slot written")

	res, err = heartbeatScript.Run(ctx, rdb, []string{DefaultSharedBudgetKey, seenKeyOf(DefaultSharedBudgetKey)},
		"early", now.Add(time.Minute).UnixMilli(), 1050, "early-r1", 10).Int64Slice()
	require.NoError(t, err)
	assert.EqualValues(t, 1, res[0], "in time")
	seen, err := rdb.HExists(ctx, seenKeyOf(DefaultSharedBudgetKey), "early").Result()
	require.NoError(t, err)
	assert.True(t, seen)
}

func TestSeenKeyShareTheBudgetKeysHashSlot(t *testing.T) {
	for _, tc := range []struct{ key, seen string }{
		{DefaultSharedBudgetKey, "{crmlink:amocrm}:budget:seen"},
		{"acme:budget", "{acme:budget}:seen"},
	} {
		assert.Equal(t, tc.seen, seenKeyOf(tc.key), tc.key)
	}
}

// A peer silent for reclaimAfter, while this instance has been on Redis as long, is dead or
// has stopped spending (ownFor): its share is the others' again.
func TestSharedBudgetReclaimsADeadPeersShare(t *testing.T) {
	rig := newBudgetRig(t)
	a, _ := rig.instance(t, 2, false)
	a.reclaimAfter = 1500 * time.Millisecond
	rig.waitSeen(t, 1)
	assert.Equal(t, DefaultRateLimit-shareOf(DefaultRateLimit, 2), burst(a, PriorityCall), "the peer may still be spending")
	time.Sleep(a.reclaimAfter + a.window)
	assert.Equal(t, DefaultRateLimit, burst(a, PriorityCall), "silent for reclaimAfter: its share is back")
}

// Cut off while a peer may be on Redis, an instance spends its own share for ownFor, then
// nothing, so that the peer can take that share back; while every peer says it is cut off
// too (a Redis down for all), it goes on spending.
func TestSharedBudgetCutOffInstanceSpendsItsShareForOwnFor(t *testing.T) {
	for _, tc := range []struct {
		name        string
		peersCutOff bool
	}{
		{"a peer may be on Redis", false},
		{"every peer cut off too", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rig := newBudgetRig(t)
			b, proxy := rig.instance(t, 2, true)
			b.ownFor = 2500 * time.Millisecond
			b.peersCutOff = func() bool { return tc.peersCutOff }
			rig.waitSeen(t, 1)
			proxy.Cut()
			testrig.WaitFor(t, 2*time.Second, "b knows it is cut off", b.down.Load)
			var log grantLog
			var wg sync.WaitGroup
			ctx, stop := context.WithCancel(context.Background())
			spend(ctx, &wg, b, "b", &log)
			time.Sleep(5 * time.Second)
			stop()
			wg.Wait()
			until := time.Unix(0, b.downSince.Load()).Add(b.ownFor)
			assert.Positive(t, log.count("b", until.Add(-time.Second), until), "its share within ownFor")
			late := log.count("b", until.Add(b.window), time.Now())
			if tc.peersCutOff {
				assert.Positive(t, late, "everyone cut off: each spends its share")
			} else {
				assert.Zero(t, late, "past ownFor nothing, while a peer may have taken the share back")
			}
		})
	}
}

// Redis starts refusing writes (a master whose replicas fell behind: min-replicas-to-write;
// go-redis retries the refusal until the look times out): the instance spends its own share
// once the gate after its last heartbeat has passed, and its looks for Redis coming back
// do not move that gate on, so a call is served within its deadline.
func TestSharedBudgetServesCallsWhileRedisRefusesWrites(t *testing.T) {
	addr := testrig.PrivateRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rdb.Close() })
	s := newBudget(t, rdb, 2, newLimiter(rateWindow(DefaultRateLimit, DefaultRateMargin)).reserveForCalls(2))
	testrig.WaitFor(t, 2*time.Second, "a heartbeat in Redis", func() bool {
		return rdb.HExists(context.Background(), seenKeyOf(DefaultSharedBudgetKey), s.id).Val()
	})
	require.NoError(t, rdb.ConfigSet(context.Background(), "min-replicas-to-write", "1").Err())
	testrig.WaitFor(t, 2*time.Second, "the instance knows Redis refuses writes", s.down.Load)
	time.Sleep(700 * time.Millisecond) // a call comes in a moment later
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		require.NoError(t, s.wait(ctx, PriorityCall), "call %d", i)
		cancel()
	}
	assert.True(t, s.down.Load(), "served from the own share")
	require.NoError(t, rdb.ConfigSet(context.Background(), "min-replicas-to-write", "0").Err())
	testrig.WaitFor(t, 2*time.Second, "back on the shared budget", func() bool { return !s.down.Load() })
}
