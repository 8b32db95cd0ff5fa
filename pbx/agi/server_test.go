package agi

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/pbx/dialplan"
	"github.com/crmlink/crmlink/routing"
)

func TestRouteSetsVariables(t *testing.T) {
	tests := []struct {
		name     string
		decision routing.Decision
		trying   bool
		want     map[string]string
	}{
		{
			name: "routed to two phones",
			decision: routing.Decision{
				Result: routing.Routed, Owner: 42, Source: routing.SourceIndex,
				Targets: []routing.Target{{Endpoint: "PJSIP/101"}, {Endpoint: "PJSIP/102"}},
			},
			want: map[string]string{
				dialplan.VarResult: "ROUTED", dialplan.VarReason: "", dialplan.VarOwner: "42", dialplan.VarSource: "index",
				dialplan.VarDial: "PJSIP/101&PJSIP/102", dialplan.VarRingTimeout: "20",
			},
		},
		{
			name: "routed to a trunk number, Asterisk sends 100 Trying first",
			decision: routing.Decision{
				Result: routing.Routed, Owner: 7, Source: routing.SourceCRM,
				Targets: []routing.Target{{Endpoint: "PJSIP/79161234567@trunk"}},
			},
			trying: true,
			want: map[string]string{
				dialplan.VarResult: "ROUTED", dialplan.VarReason: "", dialplan.VarOwner: "7", dialplan.VarSource: "crm",
				dialplan.VarDial: "PJSIP/79161234567@trunk", dialplan.VarRingTimeout: "20",
			},
		},
		{
			name:     "fallback: not found",
			decision: routing.FallbackDecision(routing.ReasonNotFound),
			want: map[string]string{
				dialplan.VarResult: "FALLBACK", dialplan.VarReason: "not_found", dialplan.VarOwner: "", dialplan.VarSource: "",
				dialplan.VarDial: "", dialplan.VarRingTimeout: "20",
			},
		},
		{
			name: "fallback: owner unavailable keeps the owner",
			decision: routing.Decision{
				Result: routing.Fallback, Reason: routing.ReasonOwnerUnavailable, Owner: 42, Source: routing.SourceCache,
			},
			want: map[string]string{
				dialplan.VarResult: "FALLBACK", dialplan.VarReason: "owner_unavailable", dialplan.VarOwner: "42", dialplan.VarSource: "cache",
				dialplan.VarDial: "", dialplan.VarRingTimeout: "20",
			},
		},
		{
			name: "injection in CRM data falls back with nothing smuggled",
			decision: routing.Decision{
				Result: routing.Routed, Owner: 42, Source: `index" EXEC Dial`,
				Targets: []routing.Target{
					{Endpoint: "PJSIP/101\nEXEC System rm"},
					{Endpoint: "PJSIP/102,,tT"},
					{Endpoint: `PJSIP/"103"`},
					{Endpoint: "PJSIP/104&Local/1@x"},
				},
			},
			want: map[string]string{
				dialplan.VarResult: "FALLBACK", dialplan.VarReason: "no_owner", dialplan.VarOwner: "42", dialplan.VarSource: "",
				dialplan.VarDial: "", dialplan.VarRingTimeout: "20",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, calls := recordingDecider(tt.decision)
			ts := startServer(t, d)
			a := dialAGI(t, ts.addr)
			a.send(asteriskEnv("route", nil))
			got := a.answerAll(tt.trying)

			require.Len(t, got, 6, "every variable is set exactly once")
			assert.Equal(t, tt.want, varsMap(got))
			assert.Equal(t, dialplan.VarResult, got[len(got)-1].name, "CRMLINK_RESULT is set last")

			call := <-calls
			assert.Equal(t, routing.Call{
				Caller: "79161234567", Called: "4951234567",
				ChannelID: "1700000000.1", LinkedID: "1700000000.0",
			}, call)
		})
	}
}

func TestCallFromEnvironment(t *testing.T) {
	tests := []struct {
		name     string
		override map[string]string
		want     routing.Call
	}{
		{
			name:     "anonymous caller and no DNID: extension is the called number",
			override: map[string]string{"agi_callerid": "unknown", "agi_dnid": "unknown", "agi_extension": "200", "agi_arg_1": ""},
			want:     routing.Call{Caller: "", Called: "200", ChannelID: "1700000000.1", LinkedID: ""},
		},
		{
			name:     "script with a query string",
			override: map[string]string{"agi_network_script": "route?x=1"},
			want:     routing.Call{Caller: "79161234567", Called: "4951234567", ChannelID: "1700000000.1", LinkedID: "1700000000.0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, calls := recordingDecider(routing.FallbackDecision(routing.ReasonDisabled))
			ts := startServer(t, d)
			a := dialAGI(t, ts.addr)
			a.send(asteriskEnv("route", tt.override))
			a.answerAll(false)
			assert.Equal(t, tt.want, <-calls)
		})
	}
}

func TestRingTimeoutOption(t *testing.T) {
	d, _ := recordingDecider(routing.Decision{Result: routing.Routed, Targets: []routing.Target{{Endpoint: "PJSIP/101"}}})
	ts := startServer(t, d, WithRingTimeout(1500*time.Millisecond))
	a := dialAGI(t, ts.addr)
	a.send(asteriskEnv("route", nil))
	assert.Equal(t, "2", varsMap(a.answerAll(false))[dialplan.VarRingTimeout], "rounded up to whole seconds")
}

func TestUnknownScriptSetsNothing(t *testing.T) {
	d, calls := recordingDecider(routing.Decision{Result: routing.Routed})
	ts := startServer(t, d)
	a := dialAGI(t, ts.addr)
	a.send(asteriskEnv("rout", nil))

	_, err := a.readCommand()
	assert.ErrorIs(t, err, io.EOF, "connection closed without a command")
	assert.Empty(t, calls, "decider not asked")
	require.NoError(t, ts.stop(t))
	assert.Contains(t, ts.logs.String(), "unknown script")
	assert.Contains(t, ts.logs.String(), `"script":"rout"`)
}

func TestSilentPeerDoesNotDelayOthers(t *testing.T) {
	d, _ := recordingDecider(routing.Decision{Result: routing.Routed, Targets: []routing.Target{{Endpoint: "PJSIP/101"}}})
	ts := startServer(t, d, WithTimeout(500*time.Millisecond))

	silent := dialAGI(t, ts.addr) // connects and sends nothing

	start := time.Now()
	a := dialAGI(t, ts.addr)
	a.send(asteriskEnv("route", nil))
	got := a.answerAll(false)
	elapsed := time.Since(start)
	assert.Equal(t, "ROUTED", varsMap(got)[dialplan.VarResult])
	assert.Less(t, elapsed, 100*time.Millisecond, "second call answered while the first peer is silent")

	// The silent peer is cut off by its own deadline.
	_, err := silent.readCommand()
	assert.ErrorIs(t, err, io.EOF)
	require.NoError(t, ts.stop(t))
	assert.Contains(t, ts.logs.String(), "bad AGI environment")
}

func TestPeerHangsUp(t *testing.T) {
	t.Run("HANGUP line during the replies", func(t *testing.T) {
		d, _ := recordingDecider(routing.Decision{Result: routing.Routed, Targets: []routing.Target{{Endpoint: "PJSIP/101"}}})
		ts := startServer(t, d)
		a := dialAGI(t, ts.addr)
		a.send(asteriskEnv("route", nil))

		cmd, err := a.readCommand()
		require.NoError(t, err)
		parseSetVariable(t, cmd)
		a.send("HANGUP\n")
		_, err = a.readCommand()
		assert.ErrorIs(t, err, io.EOF, "no command after HANGUP")

		require.NoError(t, ts.stop(t), "no handler left running")
		assert.Contains(t, ts.logs.String(), "caller hung up")
	})

	t.Run("connection closed while deciding", func(t *testing.T) {
		entered, release := make(chan struct{}), make(chan struct{})
		d := routing.DeciderFunc(func(ctx context.Context, c routing.Call) routing.Decision {
			close(entered)
			<-release
			return routing.Decision{Result: routing.Routed, Targets: []routing.Target{{Endpoint: "PJSIP/101"}}}
		})
		ts := startServer(t, d)
		a := dialAGI(t, ts.addr)
		a.send(asteriskEnv("route", nil))
		<-entered
		require.NoError(t, a.conn.Close())
		close(release)

		require.NoError(t, ts.stop(t), "no handler left running")
		logs := ts.logs.String()
		assert.True(t, strings.Contains(logs, "Asterisk gone") || strings.Contains(logs, "SET VARIABLE failed"), logs)
	})
}

func TestGarbageInput(t *testing.T) {
	tests := []struct {
		name  string
		input string
	}{
		{"http request", "GET / HTTP/1.1\r\nHost: crmlink\r\n\r\n"},
		{"blank first line", "\n"},
		{"binary", "\x00\x01\x02\xff\xfe\n\n"},
		{"endless line", strings.Repeat("a", 3*maxLineLength)},
		{"env then eof", "agi_network: yes\nagi_network_script: route"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, calls := recordingDecider(routing.Decision{Result: routing.Routed})
			ts := startServer(t, d, WithTimeout(time.Second))
			a := dialAGI(t, ts.addr)
			a.send(tt.input)
			if tt.name == "env then eof" {
				require.NoError(t, a.conn.(*net.TCPConn).CloseWrite())
			}
			a.assertClosed()
			assert.Empty(t, calls)
			require.NoError(t, ts.stop(t))
			assert.Contains(t, ts.logs.String(), "bad AGI environment")
		})
	}
}

func TestCommandRejected(t *testing.T) {
	d, _ := recordingDecider(routing.FallbackDecision(routing.ReasonNotFound))
	ts := startServer(t, d)
	a := dialAGI(t, ts.addr)
	a.send(asteriskEnv("route", nil))
	_, err := a.readCommand()
	require.NoError(t, err)
	a.send("510 Invalid or unknown command\n")
	_, err = a.readCommand()
	assert.ErrorIs(t, err, io.EOF, "crmlink stops after a failed command")
	require.NoError(t, ts.stop(t))
	assert.Contains(t, ts.logs.String(), "SET VARIABLE failed")
}

func TestDeciderOverrunFallsBackWithinDeadline(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	d := routing.DeciderFunc(func(ctx context.Context, c routing.Call) routing.Decision {
		<-release // ignores ctx
		return routing.Decision{Result: routing.Routed, Targets: []routing.Target{{Endpoint: "PJSIP/101"}}}
	})
	ts := startServer(t, d, WithTimeout(500*time.Millisecond))
	a := dialAGI(t, ts.addr)
	start := time.Now()
	a.send(asteriskEnv("route", nil))
	got := varsMap(a.answerAll(false))
	assert.Equal(t, "FALLBACK", got[dialplan.VarResult])
	assert.Equal(t, "timeout", got[dialplan.VarReason])
	assert.Less(t, time.Since(start), 500*time.Millisecond, "answered inside the connection deadline")
}

func TestDeciderPanicFallsBack(t *testing.T) {
	d := routing.DeciderFunc(func(ctx context.Context, c routing.Call) routing.Decision { panic("boom") })
	ts := startServer(t, d)
	a := dialAGI(t, ts.addr)
	a.send(asteriskEnv("route", nil))
	got := varsMap(a.answerAll(false))
	assert.Equal(t, "FALLBACK", got[dialplan.VarResult])
	assert.Equal(t, "crm_error", got[dialplan.VarReason])
	require.NoError(t, ts.stop(t))
	assert.Contains(t, ts.logs.String(), "decider panicked")
}

func TestGracefulShutdown(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	d := routing.DeciderFunc(func(ctx context.Context, c routing.Call) routing.Decision {
		close(entered)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return routing.Decision{Result: routing.Routed, Owner: 42, Targets: []routing.Target{{Endpoint: "PJSIP/101"}}}
	})
	ts := startServer(t, d)
	a := dialAGI(t, ts.addr)
	a.send(asteriskEnv("route", nil))
	<-entered

	ts.cancel()
	<-ts.ln.closed
	_, err := net.Dial("tcp", ts.addr)
	assert.Error(t, err, "no new connections after shutdown began")

	select {
	case err := <-ts.errc:
		t.Fatalf("Serve returned (%v) before the call in progress finished", err)
	default:
	}
	close(release)
	got := varsMap(a.answerAll(false))
	assert.Equal(t, "ROUTED", got[dialplan.VarResult], "the call in progress still gets its answer")
	assert.Equal(t, "PJSIP/101", got[dialplan.VarDial])
	require.NoError(t, ts.stop(t))
}

func TestListenAndServe(t *testing.T) {
	d, _ := recordingDecider(routing.FallbackDecision(routing.ReasonNotFound))
	srv := NewServer(d)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.NoError(t, srv.ListenAndServe(ctx, "127.0.0.1:0"), "a cancelled context stops the server at once")

	err := NewServer(d).ListenAndServe(context.Background(), "256.0.0.1:1")
	assert.ErrorContains(t, err, "agi: listen on 256.0.0.1:1")
}
