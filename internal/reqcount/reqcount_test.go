package reqcount

import (
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCounter(t *testing.T) {
	var c Counter
	require.Zero(t, c.Requests("GET /a"))
	require.Empty(t, c.All())
	for _, r := range []struct{ method, target string }{{"GET", "/a?x=1"}, {"GET", "/a"}, {"POST", "/a"}, {"GET", "/b"}} {
		c.Add(httptest.NewRequest(r.method, r.target, nil))
	}
	tests := []struct {
		key  string
		want int
	}{{"GET /a", 2}, {"POST /a", 1}, {"/a", 3}, {"/b", 1}, {"DELETE /a", 0}, {"/c", 0}}
	for _, tt := range tests {
		require.Equal(t, tt.want, c.Requests(tt.key), tt.key)
	}
	require.Equal(t, map[string]int{"GET /a": 2, "POST /a": 1, "GET /b": 1}, c.All())
	c.Reset()
	require.Zero(t, c.Requests("/a"))
}
