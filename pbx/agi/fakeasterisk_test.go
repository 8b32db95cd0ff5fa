package agi

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/internal/testrig"
	"github.com/crmlink/crmlink/routing"
)

// syncBuffer collects log lines from several goroutines.
type syncBuffer = testrig.LogBuffer

// notifyListener tells the test when Serve has closed it.
type notifyListener struct {
	net.Listener
	once   sync.Once
	closed chan struct{}
}

func (l *notifyListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() { close(l.closed) })
	return err
}

type testServer struct {
	addr   string
	logs   *syncBuffer
	ln     *notifyListener
	cancel context.CancelFunc
	errc   chan error
}

// startServer runs a Server on a loopback port until the test ends.
func startServer(t *testing.T, d routing.Decider, opts ...Option) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ts := &testServer{
		addr: ln.Addr().String(),
		logs: &syncBuffer{},
		ln:   &notifyListener{Listener: ln, closed: make(chan struct{})},
		errc: make(chan error, 1),
	}
	opts = append([]Option{WithLogger(zerolog.New(ts.logs))}, opts...)
	srv := NewServer(d, opts...)
	ctx, cancel := context.WithCancel(context.Background())
	ts.cancel = cancel
	go func() { ts.errc <- srv.Serve(ctx, ts.ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-ts.errc:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	return ts
}

// stop cancels Serve and returns its result; Serve returns only after every connection's
// goroutine has finished, so a nil here also means no handler is left running.
func (ts *testServer) stop(t *testing.T) error {
	t.Helper()
	ts.cancel()
	select {
	case err := <-ts.errc:
		ts.errc <- err // for Cleanup
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
		return nil
	}
}

// asteriskEnv is the environment Asterisk 20 sends for AGI(agi://127.0.0.1:4573/<script>,<linkedid>).
func asteriskEnv(script string, override map[string]string) string {
	lines := [][2]string{
		{"agi_network", "yes"},
		{"agi_network_script", script},
		{"agi_request", "agi://127.0.0.1:4573/" + script},
		{"agi_channel", "PJSIP/trunk-00000001"},
		{"agi_language", "en"},
		{"agi_type", "PJSIP"},
		{"agi_uniqueid", "1700000000.1"},
		{"agi_version", "20.5.0"},
		{"agi_callerid", "79161234567"},
		{"agi_calleridname", "unknown"},
		{"agi_callingpres", "0"},
		{"agi_callingani2", "0"},
		{"agi_callington", "0"},
		{"agi_callingtns", "0"},
		{"agi_dnid", "4951234567"},
		{"agi_rdnis", "unknown"},
		{"agi_context", "from-trunk"},
		{"agi_extension", "4951234567"},
		{"agi_priority", "1"},
		{"agi_enhanced", "0.0"},
		{"agi_accountcode", ""},
		{"agi_threadid", "140000000000000"},
		{"agi_arg_1", "1700000000.0"},
	}
	var b strings.Builder
	seen := map[string]bool{}
	for _, kv := range lines {
		v := kv[1]
		if o, ok := override[kv[0]]; ok {
			v = o
		}
		seen[kv[0]] = true
		b.WriteString(kv[0] + ": " + v + "\n")
	}
	for k, v := range override {
		if !seen[k] {
			b.WriteString(k + ": " + v + "\n")
		}
	}
	b.WriteString("\n")
	return b.String()
}

// fakeAsterisk is the Asterisk side of one FastAGI connection.
type fakeAsterisk struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dialAGI(t *testing.T, addr string) *fakeAsterisk {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	// A safety net only: every wait below ends on an event long before this.
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	return &fakeAsterisk{t: t, conn: conn, r: bufio.NewReader(conn)}
}

func (f *fakeAsterisk) send(s string) {
	f.t.Helper()
	_, err := io.WriteString(f.conn, s)
	require.NoError(f.t, err)
}

// readCommand returns the next command line, or io.EOF once crmlink has closed the connection.
func (f *fakeAsterisk) readCommand() (string, error) {
	line, err := f.r.ReadString('\n')
	if err != nil {
		if line != "" {
			return "", io.ErrUnexpectedEOF
		}
		return "", err
	}
	return strings.TrimSuffix(line, "\n"), nil
}

// assertClosed expects crmlink to have closed the connection: EOF, or a reset when it closed
// with our bytes still unread.
func (f *fakeAsterisk) assertClosed() {
	f.t.Helper()
	_, err := f.readCommand()
	if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		f.t.Errorf("connection not closed by crmlink: %v", err)
	}
}

type setVar struct{ name, value string }

// parseSetVariable checks a command the way res_agi would split it and returns the variable.
func parseSetVariable(t *testing.T, cmd string) setVar {
	t.Helper()
	rest, ok := strings.CutPrefix(cmd, "SET VARIABLE ")
	require.True(t, ok, "unexpected command %q", cmd)
	name, value, ok := strings.Cut(rest, " ")
	require.True(t, ok, "SET VARIABLE without a value: %q", cmd)
	require.True(t, len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"', "value not quoted: %q", cmd)
	value = value[1 : len(value)-1]
	require.NotContains(t, value, `"`, "quote inside value: %q", cmd)
	require.NotContains(t, value, `\`, "backslash inside value: %q", cmd)
	require.NotContains(t, value, " ", "space inside value: %q", cmd)
	return setVar{name, value}
}

// answerAll answers every command with "200 result=1" until crmlink closes the connection.
// With trying, each reply is preceded by "100 result=0 Trying...", as some commands do.
func (f *fakeAsterisk) answerAll(trying bool) []setVar {
	f.t.Helper()
	var got []setVar
	for {
		cmd, err := f.readCommand()
		if errors.Is(err, io.EOF) {
			return got
		}
		require.NoError(f.t, err)
		got = append(got, parseSetVariable(f.t, cmd))
		if trying {
			f.send("100 result=0 Trying...\n")
		}
		f.send("200 result=1\n")
	}
}

func varsMap(vs []setVar) map[string]string {
	m := make(map[string]string, len(vs))
	for _, v := range vs {
		m[v.name] = v.value
	}
	return m
}

// recordingDecider returns d for every call and hands each call to the test.
func recordingDecider(d routing.Decision) (routing.Decider, <-chan routing.Call) {
	calls := make(chan routing.Call, 16)
	return routing.DeciderFunc(func(ctx context.Context, c routing.Call) routing.Decision {
		calls <- c
		return d
	}), calls
}
