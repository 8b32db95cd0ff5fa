package routing

import (
	"testing"

	"github.com/crmlink/crmlink/internal/testrig"
)

// The cached path is what nearly every call takes; these keep its cost visible.

func BenchmarkDecideCached(b *testing.B) {
	benchmarkDecideCached(b, NewMemoryCache(0, nil))
}

func BenchmarkDecideCachedRedis(b *testing.B) {
	benchmarkDecideCached(b, NewRedisCache(testrig.Redis(b), ""))
}

func benchmarkDecideCached(b *testing.B, cache OwnerCache) {
	dir := basicWorld().directory()
	r, err := New(Options{Directory: dir, Cache: cache, Managers: testManagers(), Enabled: true, CheckManagerStatus: true})
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	if d := r.Decide(ctx, call()); d.Result != Routed {
		b.Fatalf("warm-up decision: %+v", d)
	}
	calls := dir.calls()
	b.ReportAllocs()
	for b.Loop() {
		if d := r.Decide(ctx, call()); d.Source != SourceCache {
			b.Fatalf("not cached: %+v", d)
		}
	}
	if dir.calls() != calls {
		b.Fatalf("the CRM was asked %d more times", dir.calls()-calls)
	}
}
