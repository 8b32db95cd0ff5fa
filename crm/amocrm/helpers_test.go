package amocrm

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
)

// startSandbox serves the sandbox's example seed, without its rate limit unless opts set one.
func startSandbox(t *testing.T, opts ...sandbox.Option) (*sandbox.Server, string) {
	t.Helper()
	seed, err := sandbox.LoadSeed("sandbox/testdata/seed.yaml")
	require.NoError(t, err)
	sb := sandbox.New(seed, append([]sandbox.Option{sandbox.WithRateLimit(-1)}, opts...)...)
	ts := httptest.NewServer(sb)
	t.Cleanup(ts.Close)
	t.Cleanup(sb.Close)
	return sb, ts.URL
}

// newClient builds a client with a fast limiter and short backoffs; edit adjusts the options.
func newClient(t *testing.T, baseURL string, edit func(*Options)) *Client {
	t.Helper()
	o := Options{BaseURL: baseURL, Token: sandbox.DefaultToken, RateLimit: 1000}
	if edit != nil {
		edit(&o)
	}
	c, err := New(o)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	c.backoff, c.backoffMax = 5*time.Millisecond, 40*time.Millisecond
	return c
}

func sandboxRate(n int) sandbox.Option { return sandbox.WithRateLimit(n) }
