package routing

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crmlink/crmlink/crm"
)

// Concurrent lookups: when a number calls several times at once (a redial storm, several
// lines of one office) and the cache cannot answer, every concurrent decision should wait
// on one CRM request, not spend one each from the account's 7 requests a second. The CRM
// here answers after crmLatency and the cache never keeps anything, so every decision is a
// live lookup; crm-req/op is the CRM requests spent per decision: 1 without sharing, and
// about 1/(decisions in flight) with it. ManyNumbers is the same load over distinct
// numbers, where nothing can be shared, for comparison.

const crmLatency = time.Millisecond

func BenchmarkDecideConcurrentOneNumber(b *testing.B) {
	benchmarkConcurrentLookups(b, func(uint64) string { return callerRaw })
}

func BenchmarkDecideConcurrentManyNumbers(b *testing.B) {
	benchmarkConcurrentLookups(b, func(i uint64) string { return fmt.Sprintf("8916%07d", i%10_000_000) })
}

func benchmarkConcurrentLookups(b *testing.B, number func(uint64) string) {
	dir := &fakeDirectory{FindFunc: func(ctx context.Context, phone crm.Phone) ([]crm.Contact, error) {
		select {
		case <-time.After(crmLatency):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return []crm.Contact{{ID: 1, Responsible: userContact, Phones: []string{string(phone)}, UpdatedAt: tBase}}, nil
	}}
	r, err := New(Options{Directory: dir, Cache: forgetfulCache{}, Managers: testManagers(), Enabled: true,
		Precedence: []crm.EntityType{crm.EntityContact}, LookupTimeout: 5 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	var seq, fallbacks atomic.Uint64
	b.SetParallelism(16) // 16 decisions in flight per CPU: calls arriving while the CRM answers
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			c := call()
			c.Caller = number(seq.Add(1))
			if d := r.Decide(ctx, c); d.Result != Routed {
				fallbacks.Add(1)
			}
		}
	})
	b.StopTimer()
	if n := fallbacks.Load(); n > 0 {
		b.Fatalf("%d of %d decisions fell back", n, b.N)
	}
	b.ReportMetric(float64(dir.calls())/float64(b.N), "crm-req/op")
}

// forgetfulCache never holds an entry: every decision misses.
type forgetfulCache struct{}

func (forgetfulCache) Get(context.Context, crm.Phone) (Entry, bool, error) {
	return Entry{}, false, nil
}
func (forgetfulCache) Set(context.Context, Entry, time.Duration) error        { return nil }
func (forgetfulCache) Delete(context.Context, crm.Phone) error                { return nil }
func (forgetfulCache) Phones(context.Context, EntityKey) ([]crm.Phone, error) { return nil, nil }
func (forgetfulCache) Unlink(context.Context, EntityKey) error                { return nil }
func (forgetfulCache) inProcess()                                             {}
