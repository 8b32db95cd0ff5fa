package amocrm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
)

func TestStatusMapping(t *testing.T) {
	cases := []struct {
		status int
		want   error
		text   string
	}{
		{401, crm.ErrUnauthorized, "401"},
		{403, crm.ErrForbidden, "403"},
		{404, crm.ErrNotFound, "not found"},
		{429, crm.ErrRateLimited, "429"},
		{500, crm.ErrUnavailable, "status 500"},
		{502, crm.ErrUnavailable, "status 502"},
		{503, crm.ErrUnavailable, "status 503"},
		{400, nil, "status 400: Bad Request: failure injected by the sandbox"},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			sb, url := startSandbox(t)
			c := newClient(t, url, func(o *Options) { o.MaxRetries = 1 })
			sb.FailNext(2, tc.status)
			_, err := c.Users(context.Background())
			require.Error(t, err)
			if tc.want != nil {
				assert.ErrorIs(t, err, tc.want)
			}
			for _, e := range []error{crm.ErrUnauthorized, crm.ErrForbidden, crm.ErrNotFound, crm.ErrRateLimited, crm.ErrUnavailable} {
				if e != tc.want {
					assert.NotErrorIs(t, err, e)
				}
			}
			assert.True(t, strings.HasPrefix(err.Error(), "amocrm GET /api/v4/users: "), err.Error())
			assert.Contains(t, err.Error(), tc.text)
			assert.NotContains(t, err.Error(), c.auth.(staticToken))
		})
	}
}

func TestWrongTokenIsUnauthorized(t *testing.T) {
	_, url := startSandbox(t)
	c := newClient(t, url, func(o *Options) { o.Token = "secret-but-wrong" })
	_, err := c.FindContactsByPhone(context.Background(), "+74951234567")
	require.ErrorIs(t, err, crm.ErrUnauthorized)
	assert.Equal(t, "amocrm GET /api/v4/contacts: CRM rejected the credentials (401)", err.Error())
}

func TestRateLimitedThenSuccess(t *testing.T) {
	sb, url := startSandbox(t)
	c := newClient(t, url, nil)
	sb.FailNext(3, http.StatusTooManyRequests)
	users, err := c.Users(context.Background())
	require.NoError(t, err)
	assert.Len(t, users, 3)
	assert.Equal(t, 4, sb.Requests("GET /api/v4/users"))
}

func TestRateLimitedGivesUpWithinDeadline(t *testing.T) {
	sb, url := startSandbox(t)
	c := newClient(t, url, nil)
	c.backoff, c.backoffMax = 40*time.Millisecond, time.Second
	sb.FailNext(1000, http.StatusTooManyRequests)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err := c.Users(ctx)
	require.ErrorIs(t, err, crm.ErrRateLimited)
	assert.NotErrorIs(t, err, context.DeadlineExceeded, "gave up before the deadline instead of sleeping into it")
	assert.Less(t, time.Since(begin), 300*time.Millisecond)
	assert.Greater(t, sb.Requests("GET /api/v4/users"), 1, "retried while the deadline allowed")
}

func TestRateLimitedWithoutDeadlineStopsAfterMaxRetries(t *testing.T) {
	sb, url := startSandbox(t)
	c := newClient(t, url, func(o *Options) { o.MaxRetries = 2 })
	sb.FailNext(1000, http.StatusTooManyRequests)
	_, err := c.Users(context.Background())
	require.ErrorIs(t, err, crm.ErrRateLimited)
	assert.Equal(t, 3, sb.Requests("GET /api/v4/users"))
}

func TestSandboxRateLimitIsAbsorbed(t *testing.T) {
	// A client configured faster than the account: the 429s it causes are retried.
	sb, url := startSandbox(t, sandboxRate(5))
	c := newClient(t, url, func(o *Options) { o.RateLimit = 50 })
	c.backoff, c.backoffMax = 100*time.Millisecond, 400*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 8 {
		_, err := c.Company(ctx, 3001)
		require.NoError(t, err, "request %d", i)
	}
	assert.Greater(t, sb.Requests("GET /api/v4/companies/3001"), 8, "the sandbox answered some with 429")
}

func TestDeadlineOnHangingServer(t *testing.T) {
	sb, url := startSandbox(t)
	c := newClient(t, url, nil)
	sb.Hang(1)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err := c.CallPath().FindContactsByPhone(ctx, "+74951234567")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.NotErrorIs(t, err, crm.ErrUnavailable, "a timeout is not an outage")
	assert.Less(t, time.Since(begin), time.Second)
	assert.True(t, strings.HasPrefix(err.Error(), "amocrm GET /api/v4/contacts: "), err.Error())
}

func TestRequestTimeoutIsUnavailable(t *testing.T) {
	sb, url := startSandbox(t)
	c := newClient(t, url, func(o *Options) { o.RequestTimeout = 50 * time.Millisecond })
	sb.Hang(1)
	_, err := c.Users(context.Background())
	require.ErrorIs(t, err, crm.ErrUnavailable)
	assert.Contains(t, err.Error(), "no answer within the request timeout")
}

func TestNetworkErrorIsUnavailable(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	url := ts.URL
	ts.Close()
	_, err := newClient(t, url, nil).Users(context.Background())
	require.ErrorIs(t, err, crm.ErrUnavailable)
	assert.NotContains(t, err.Error(), "limit=250", "the query (which may hold a number) stays out of errors")
}

// pagedServer serves users in pages of two, with next links naming another host.
func pagedServer(t *testing.T, pages int, loop bool) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		assert.Equal(t, "Bearer "+"sandbox-token", r.Header.Get("Authorization"))
		page := 1
		fmt.Sscan(r.URL.Query().Get("page"), &page)
		next := ""
		if page < pages || loop {
			n := page + 1
			if loop {
				n = 1
			}
			next = fmt.Sprintf(`,"next":{"href":"https://elsewhere.example/api/v4/users?limit=2&page=%d"}`, n)
		}
		w.Header().Set("Content-Type", "application/hal+json")
		fmt.Fprintf(w, `{"_page":%d,"_links":{"self":{"href":"x"}%s},"_embedded":{"users":[{"id":%d,"name":"u"},{"id":%d,"name":"v"}]}}`,
			page, next, page*10+1, page*10+2)
	}))
	t.Cleanup(ts.Close)
	return ts, &hits
}

func TestPaginationFollowsNextOnOwnHost(t *testing.T) {
	ts, hits := pagedServer(t, 3, false)
	users, err := newClient(t, ts.URL, nil).Users(context.Background())
	require.NoError(t, err)
	var ids []crm.UserID
	for _, u := range users {
		ids = append(ids, u.ID)
	}
	assert.Equal(t, []crm.UserID{11, 12, 21, 22, 31, 32}, ids)
	assert.EqualValues(t, 3, hits.Load(), "the token never went to elsewhere.example")
}

func TestPaginationLoopIsAnError(t *testing.T) {
	ts, hits := pagedServer(t, 1, true)
	_, err := newClient(t, ts.URL, nil).Users(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "already read")
	assert.LessOrEqual(t, hits.Load(), int32(3))
}

func TestPaginationAgainstSandbox(t *testing.T) {
	sb, url := startSandbox(t)
	c := newClient(t, url, nil)
	got, err := listAll[contactDTO](context.Background(), c, contactsPath, map[string][]string{"limit": {"3"}}, "contacts")
	require.NoError(t, err)
	assert.Len(t, got, 4)
	assert.Equal(t, 2, sb.Requests("GET /api/v4/contacts"))
}

func TestEmptyAnswers(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(ts.Close)
	c := newClient(t, ts.URL, nil)
	users, err := c.Users(context.Background())
	require.NoError(t, err)
	assert.Empty(t, users)
	_, err = c.Contact(context.Background(), 5)
	assert.ErrorIs(t, err, crm.ErrNotFound, "204 on a single entity")
}

func TestGarbageBodyIsAnError(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"_embedded":{"users":"nope"}}`)
	}))
	t.Cleanup(ts.Close)
	_, err := newClient(t, ts.URL, nil).Users(context.Background())
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "amocrm GET /api/v4/users: decode page 1"), err.Error())
	assert.False(t, errors.Is(err, crm.ErrNotFound))
}
