package routing

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/internal/testrig"
)

func sampleEntry(phone crm.Phone) Entry {
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	return Entry{
		Phone: phone, Found: true,
		ContactID: 1, ContactResponsible: userContact,
		CompanyID: 5, CompanyResponsible: userCompany, CompanyKnown: true,
		LeadsKnown: true,
		Leads: []LeadRef{
			{ID: 100, Responsible: userLead, UpdatedAt: at.Add(-time.Hour), Open: true},
			{ID: 101, Responsible: userOther, UpdatedAt: at.Add(-2 * time.Hour), Open: false},
		},
		Owner: userLead, OwnerFrom: crm.EntityLead, Source: SourceCRM,
		StoredAt: at, ExpiresAt: at.Add(6 * time.Hour),
	}
}

func TestOwnerCache(t *testing.T) {
	const (
		p1 crm.Phone = "+79161234567"
		p2 crm.Phone = "+74951234567"
	)
	contact := EntityKey{Type: crm.EntityContact, ID: 1}
	cases := []struct {
		name string
		run  func(t *testing.T, ctx context.Context, c OwnerCache)
	}{
		{"miss", func(t *testing.T, ctx context.Context, c OwnerCache) {
			_, ok, err := c.Get(ctx, p1)
			require.NoError(t, err)
			assert.False(t, ok)
			phones, err := c.Phones(ctx, contact)
			require.NoError(t, err)
			assert.Empty(t, phones)
		}},
		{"round trip keeps the whole chain", func(t *testing.T, ctx context.Context, c OwnerCache) {
			e := sampleEntry(p1)
			require.NoError(t, c.Set(ctx, e, time.Hour))
			got, ok, err := c.Get(ctx, p1)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, e, got)
		}},
		{"negative entry has no links", func(t *testing.T, ctx context.Context, c OwnerCache) {
			require.NoError(t, c.Set(ctx, Entry{Phone: p1, Source: SourceCRM}, time.Minute))
			got, ok, err := c.Get(ctx, p1)
			require.NoError(t, err)
			require.True(t, ok)
			assert.False(t, got.Found)
			phones, err := c.Phones(ctx, contact)
			require.NoError(t, err)
			assert.Empty(t, phones)
		}},
		{"links every entity of the chain", func(t *testing.T, ctx context.Context, c OwnerCache) {
			require.NoError(t, c.Set(ctx, sampleEntry(p1), time.Hour))
			require.NoError(t, c.Set(ctx, sampleEntry(p2), time.Hour))
			for _, k := range []EntityKey{contact, {crm.EntityCompany, 5}, {crm.EntityLead, 100}, {crm.EntityLead, 101}} {
				phones, err := c.Phones(ctx, k)
				require.NoError(t, err)
				assert.ElementsMatch(t, []crm.Phone{p1, p2}, phones, k.String())
			}
			phones, err := c.Phones(ctx, EntityKey{crm.EntityLead, 999})
			require.NoError(t, err)
			assert.Empty(t, phones)
		}},
		{"overwrite", func(t *testing.T, ctx context.Context, c OwnerCache) {
			require.NoError(t, c.Set(ctx, sampleEntry(p1), time.Hour))
			e := sampleEntry(p1)
			e.Owner, e.Source = userOther, SourceIndex
			require.NoError(t, c.Set(ctx, e, time.Hour))
			got, _, err := c.Get(ctx, p1)
			require.NoError(t, err)
			assert.Equal(t, userOther, got.Owner)
			assert.Equal(t, SourceIndex, got.Source)
		}},
		{"delete", func(t *testing.T, ctx context.Context, c OwnerCache) {
			require.NoError(t, c.Set(ctx, sampleEntry(p1), time.Hour))
			require.NoError(t, c.Set(ctx, sampleEntry(p2), time.Hour))
			require.NoError(t, c.Delete(ctx, p1))
			_, ok, err := c.Get(ctx, p1)
			require.NoError(t, err)
			assert.False(t, ok)
			_, ok, err = c.Get(ctx, p2)
			require.NoError(t, err)
			assert.True(t, ok)
			require.NoError(t, c.Delete(ctx, p1), "deleting twice is fine")
		}},
		{"unlink", func(t *testing.T, ctx context.Context, c OwnerCache) {
			require.NoError(t, c.Set(ctx, sampleEntry(p1), time.Hour))
			require.NoError(t, c.Unlink(ctx, contact))
			phones, err := c.Phones(ctx, contact)
			require.NoError(t, err)
			assert.Empty(t, phones)
			phones, err = c.Phones(ctx, EntityKey{crm.EntityLead, 100})
			require.NoError(t, err)
			assert.Equal(t, []crm.Phone{p1}, phones, "other links stay")
		}},
		{"entries are copies", func(t *testing.T, ctx context.Context, c OwnerCache) {
			require.NoError(t, c.Set(ctx, sampleEntry(p1), time.Hour))
			got, _, err := c.Get(ctx, p1)
			require.NoError(t, err)
			got.Leads[0].Responsible = userUnknown
			again, _, err := c.Get(ctx, p1)
			require.NoError(t, err)
			assert.Equal(t, userLead, again.Leads[0].Responsible)
		}},
	}
	for _, kind := range cacheKinds {
		for _, c := range cases {
			t.Run(kind.name+"/"+c.name, func(t *testing.T) {
				c.run(t, t.Context(), kind.make(t, newClock()))
			})
		}
	}
}

func TestMemoryCacheExpiry(t *testing.T) {
	clock := newClock()
	c := NewMemoryCache(0, clock.Now)
	ctx := t.Context()
	require.NoError(t, c.Set(ctx, sampleEntry(callerPhone), time.Minute))
	clock.Advance(time.Minute - time.Nanosecond)
	_, ok, _ := c.Get(ctx, callerPhone)
	assert.True(t, ok)
	phones, _ := c.Phones(ctx, EntityKey{crm.EntityContact, 1})
	assert.Len(t, phones, 1)

	clock.Advance(time.Nanosecond)
	_, ok, _ = c.Get(ctx, callerPhone)
	assert.False(t, ok)
	phones, _ = c.Phones(ctx, EntityKey{crm.EntityContact, 1})
	assert.Empty(t, phones)
	assert.Zero(t, c.Len())
}

func TestMemoryCacheBounded(t *testing.T) {
	clock := newClock()
	c := NewMemoryCache(3, clock.Now)
	ctx := t.Context()
	phones := []crm.Phone{"+79160000001", "+79160000002", "+79160000003", "+79160000004", "+79160000005"}
	for i, p := range phones {
		e := sampleEntry(p)
		e.ContactID = int64(i + 1) // one contact per phone
		require.NoError(t, c.Set(ctx, e, time.Duration(i+1)*time.Hour))
		assert.LessOrEqual(t, c.Len(), 3)
	}
	assert.Equal(t, 3, c.Len())
	// The newest entry always survives, and an evicted entry takes its links with it.
	_, ok, _ := c.Get(ctx, phones[4])
	assert.True(t, ok)
	linked := 0
	for i := range phones {
		ps, _ := c.Phones(ctx, EntityKey{crm.EntityContact, int64(i + 1)})
		linked += len(ps)
	}
	assert.Equal(t, 3, linked)

}

func TestMemoryCacheFullSweepsExpired(t *testing.T) {
	clock := newClock()
	c := NewMemoryCache(10, clock.Now)
	ctx := t.Context()
	for i := range 10 {
		require.NoError(t, c.Set(ctx, Entry{Phone: crm.Phone("+7916000000" + string(rune('0'+i)))}, time.Minute))
	}
	clock.Advance(time.Hour)
	require.NoError(t, c.Set(ctx, sampleEntry(callerPhone), time.Hour))
	assert.Equal(t, 1, c.Len(), "a full cache drops every expired entry, not just one")
}

func TestRedisCacheLayout(t *testing.T) {
	rdb := testrig.Redis(t)
	c := NewRedisCache(rdb, "test:owner:")
	ctx := t.Context()
	require.NoError(t, c.Set(ctx, sampleEntry(callerPhone), time.Hour))

	ttl, err := rdb.TTL(ctx, "test:owner:phone:+79161234567").Result()
	require.NoError(t, err)
	assert.InDelta(t, float64(time.Hour), float64(ttl), float64(time.Minute))
	ttl, err = rdb.TTL(ctx, "test:owner:entity:contact:1").Result()
	require.NoError(t, err)
	assert.InDelta(t, float64(time.Hour), float64(ttl), float64(time.Minute))
	members, err := rdb.SMembers(ctx, "test:owner:entity:lead:100").Result()
	require.NoError(t, err)
	assert.Equal(t, []string{"+79161234567"}, members)

	// A value that is not an entry is reported, and the Router then treats it as a miss.
	require.NoError(t, rdb.Set(ctx, "test:owner:phone:+79161234567", "{not json", time.Hour).Err())
	_, ok, err := c.Get(ctx, callerPhone)
	assert.Error(t, err)
	assert.False(t, ok)
}

func TestCorruptCacheFallsBackToCRM(t *testing.T) {
	rdb := testrig.Redis(t)
	require.NoError(t, rdb.Set(t.Context(), DefaultRedisPrefix+"phone:"+string(callerPhone), "garbage", time.Hour).Err())
	dir := basicWorld().directory()
	r := newTestRouter(t, dir, newClock(), func(o *Options) { o.Cache = NewRedisCache(rdb, "") })
	d := r.Decide(t.Context(), call())
	assert.Equal(t, Routed, d.Result)
	assert.Equal(t, SourceCRM, d.Source)
	d = r.Decide(t.Context(), call())
	assert.Equal(t, SourceCache, d.Source, "the lookup replaced the bad value")
}
