package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const seed = "../../crm/amocrm/sandbox/testdata/seed.yaml"

func TestRunServesAndShutsDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--seed", seed, "--rate-limit", "-1"}, pw, zerolog.Nop())
		pw.Close()
	}()
	base, err := bufio.NewReader(pr).ReadString('\n')
	require.NoError(t, err)
	base = strings.TrimSpace(base)
	assert.True(t, strings.HasPrefix(base, "http://127.0.0.1:"), base)

	req, err := http.NewRequest(http.MethodGet, base+"/api/v4/contacts/2001", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer sandbox-token")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	cancel()
	assert.NoError(t, <-done)
}

func TestFlags(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{nil, "--seed is required"},
		{[]string{"--seed", "x", "extra"}, "unexpected arguments"},
		{[]string{"--bogus"}, "flag provided but not defined"},
	}
	for _, tc := range cases {
		_, err := parseFlags(tc.args)
		assert.ErrorContains(t, err, tc.want)
	}
	c, err := parseFlags([]string{"--seed", "s.yaml"})
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:8099", c.listen)

	err = run(context.Background(), []string{"--seed", "missing.yaml"}, io.Discard, zerolog.Nop())
	assert.ErrorContains(t, err, "read seed")
	err = run(context.Background(), []string{"--seed", seed, "--webhook-url", "ftp://x", "--listen", "127.0.0.1:0"}, io.Discard, zerolog.Nop())
	assert.ErrorContains(t, err, "--webhook-url")
}
