package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
	"github.com/crmlink/crmlink/pbx/sip/siptest"
)

// demo is one run: what it started, so that cleanup stops exactly that.
type demo struct {
	opts    options
	out     io.Writer
	started time.Time

	ari     ariClient
	seed    sandbox.Seed
	crm     *proc // the amoCRM sandbox
	crmURL  string
	crmlink *proc
	apiURL  string
	ui      uiTokens
	config  string // crmlink.yaml of this run

	unlock     func()
	startedRig bool
	current    *callerCall // the call being placed, to end it when interrupted
	// stoppedCrmlink: the last scenario stopped crmlink itself (SIGTERM mid-call).
	stoppedCrmlink bool
	phones         map[string]*siptest.Phone // by extension: 100 (operator desk), 101, 102, 104
	cancel         context.CancelFunc        // the phones' context

	// seen are the CRM records that existed before the current scenario.
	seen seenRecords
}

const steps = 6

func (d *demo) step(n int, format string, args ...any) {
	fmt.Fprintf(d.out, "\n==> [%d/%d] %s\n", n, steps, fmt.Sprintf(format, args...))
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "    "+format+"\n", args...)
}

func (d *demo) run(ctx context.Context) ([]row, error) {
	o := d.opts
	d.ari = newARIClient()
	seed, err := sandbox.LoadSeed(o.seed)
	if err != nil {
		return nil, err
	}
	d.seed = seed
	if err := os.RemoveAll(o.work); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(o.work, "data"), 0o755); err != nil {
		return nil, err
	}

	d.step(1, "crmlink and the amoCRM sandbox binaries (%s)", o.bin)
	if err := d.binaries(ctx); err != nil {
		return nil, err
	}

	d.step(2, "the rig: a real Asterisk 22 (Debian sid) and Redis on loopback (docker/rig.sh)")
	if err := d.rigUp(ctx); err != nil {
		return nil, err
	}

	d.step(3, "the amoCRM sandbox with the demo company (%s)", rel(o.root, o.seed))
	if err := d.startSandbox(ctx); err != nil {
		return nil, err
	}

	d.step(4, "the rig lock (%s): calls go through the rig only one test run at a time", o.lock)
	unlock, err := lockRig(ctx, o.lock, o.lockWait, d.say)
	if err != nil {
		return nil, err
	}
	d.unlock = unlock

	d.step(5, "crmlink serve (the real binary) and the office phones")
	if err := d.startCrmlink(ctx); err != nil {
		return nil, err
	}
	if err := d.startPhones(ctx); err != nil {
		return nil, err
	}

	d.step(6, "real SIP calls from the test phone (the PSTN side, 127.0.0.2) to 200 (Stasis(crmlink))")
	var rows []row
	for i, sc := range scenarios() {
		if err := ctx.Err(); err != nil {
			return rows, err
		}
		fmt.Fprintf(d.out, "\n  -- %d. %s: %s calls\n", i+1, sc.title, sc.caller)
		r := d.play(ctx, sc)
		for _, p := range r.problems {
			d.say("PROBLEM: %s", p)
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// binaries builds crmlink and the sandbox into opts.bin when they are not there (make demo
// has just built them).
func (d *demo) binaries(ctx context.Context) error {
	for _, b := range []struct{ name, pkg string }{{"crmlink", "./cmd/crmlink"}, {"amocrm-sandbox", "./cmd/amocrm-sandbox"}} {
		path := filepath.Join(d.opts.bin, b.name)
		if _, err := os.Stat(path); err == nil {
			d.say("%s: %s", b.name, rel(d.opts.root, path))
			continue
		}
		d.say("building %s (go build %s)", b.name, b.pkg)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", path, b.pkg)
		cmd.Dir, cmd.Stdout, cmd.Stderr = d.opts.root, d.out, d.out
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build %s: %w", b.pkg, err)
		}
	}
	out, _ := exec.CommandContext(ctx, filepath.Join(d.opts.bin, "crmlink"), "version").Output()
	d.say("%s", strings.TrimSpace(string(out)))
	return nil
}

// rigUp runs `docker/rig.sh up`, which returns at once when the rig already runs and
// otherwise starts it, printing its progress (the root filesystem build takes about a
// minute, once). The rig is shared with the tests and benchmarks of everyone on this
// machine, so the demo leaves it running; with --stop-rig it stops a rig it started itself.
func (d *demo) rigUp(ctx context.Context) error {
	running := false
	for i := 0; i < 3 && !running; i++ { // a busy Asterisk may miss one 2 s ping
		running = d.ari.ping() == nil
		if !running && i < 2 {
			time.Sleep(time.Second)
		}
	}
	if running {
		d.say("already running: Asterisk answers on %s; left running at the end", d.ari.base)
		return nil
	}
	d.say("starting it; the first run builds the Debian sid root filesystem into ~/.cache/crmlink (about a minute)")
	var out strings.Builder
	cmd := exec.CommandContext(ctx, filepath.Join(d.opts.root, "docker", "rig.sh"), "up")
	w := io.MultiWriter(prefixed(d.out, "    "), &out)
	cmd.Dir, cmd.Stdout, cmd.Stderr = d.opts.root, w, w
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("docker/rig.sh up: %w", err)
	}
	// Someone else's rig came up meanwhile: not the demo's to stop.
	d.startedRig = !strings.Contains(out.String(), "already answers")
	switch {
	case !d.startedRig:
	case d.opts.stopRig:
		d.say("--stop-rig: the demo stops it at the end")
	default:
		d.say("it stays up at the end for the next run and the tests (make sandbox-down stops it)")
	}
	return nil
}

func (d *demo) startSandbox(ctx context.Context) error {
	logPath := filepath.Join(d.opts.work, "amocrm-sandbox.log")
	p, stdout, err := startProc(ctx, "amocrm-sandbox", logPath, filepath.Join(d.opts.bin, "amocrm-sandbox"),
		"--listen", "127.0.0.1:0", "--seed", d.opts.seed)
	if err != nil {
		return err
	}
	d.crm = p
	url, err := firstLine(stdout, 10*time.Second)
	if err != nil {
		return fmt.Errorf("amocrm-sandbox did not print its address (%v); see %s", err, logPath)
	}
	d.crmURL = url
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	d.say("listening on %s: %d managers, %d clients, %d deals (open and closed); log %s",
		url, len(d.seed.Users), len(d.seed.Contacts), len(d.seed.Leads), rel(d.opts.root, logPath))
	return nil
}

func (d *demo) startCrmlink(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	d.apiURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	d.config = filepath.Join(d.opts.work, "crmlink.yaml")
	d.ui = newUITokens()
	text := demoConfig(port, filepath.Join(d.opts.work, "data"), d.crmURL, d.seed.Token, d.ui, time.Now())
	if err := os.WriteFile(d.config, []byte(text), 0o600); err != nil {
		return err
	}
	d.say("crmlink runs on its embedded defaults plus %s:", rel(d.opts.root, d.config))
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		fmt.Fprintf(d.out, "      | %s\n", line)
	}
	return d.launchCrmlink(ctx, "crmlink.log")
}

// launchCrmlink runs `crmlink serve` on the demo's configuration and waits until it routes.
func (d *demo) launchCrmlink(ctx context.Context, logName string) error {
	logPath := filepath.Join(d.opts.work, logName)
	p, stdout, err := startProc(ctx, "crmlink", logPath, filepath.Join(d.opts.bin, "crmlink"), "serve", "--config", d.config)
	if err != nil {
		return err
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	d.crmlink = p
	d.say("started (pid %d, log %s)", p.cmd.Process.Pid, rel(d.opts.root, logPath))
	return waitFor(ctx, d.say, "crmlink's /healthz (ARI connected, application crmlink registered)", 20*time.Second, func() (bool, error) {
		if p.exited() {
			return false, fmt.Errorf("crmlink exited: %v; last lines of %s:\n%s", p.err(), logPath, tail(logPath, 10))
		}
		resp, err := http.Get(d.apiURL + "/healthz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK && d.ari.appRegistered("crmlink"), nil
	})
}

// The office phones: the operator desk sits at the fixed address asterisk-conf/pjsip.conf
// gives it; the managers' phones register, so Asterisk (and crmlink) see them online.
var officePhones = []struct{ ext, who string }{
	{"100", "operator desk"}, {"101", "Anna"}, {"102", "Boris"}, {"104", "Vera"},
}

func (d *demo) startPhones(ctx context.Context) error {
	pctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	d.phones = map[string]*siptest.Phone{}
	for _, ph := range officePhones {
		port := 0
		if ph.ext == "100" {
			port = 5170
		}
		p, err := siptest.NewPhone(pctx, siptest.PhoneOptions{User: ph.ext, BindHost: "127.0.0.1", BindPort: port})
		if err != nil {
			return fmt.Errorf("phone %s: %w", ph.ext, err)
		}
		d.phones[ph.ext] = p
		if ph.ext == "100" {
			continue
		}
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		res, err := p.Register(rctx, "sip:127.0.0.1:5060", 5*time.Minute)
		rcancel()
		if err != nil {
			return fmt.Errorf("phone %s: %w", ph.ext, err)
		}
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("phone %s: REGISTER answered %d %s", ph.ext, res.StatusCode, res.Reason)
		}
	}
	if err := waitFor(ctx, d.say, "the managers' phones online in Asterisk", 10*time.Second, func() (bool, error) {
		for _, ext := range []string{"101", "102", "104"} {
			if d.ari.endpointState(ext) != "online" {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		return err
	}
	d.say("phones: 100 operator desk (127.0.0.1:5170), 101 Anna, 102 Boris, 104 Vera registered; 105 Gleb stays offline")
	return nil
}

// cleanup stops what this run started, in reverse order. It runs whatever happened.
func (d *demo) cleanup() {
	if c := d.current; c != nil {
		// Interrupted mid-call: end it, or crmlink would wait for it (up to 30 s) to stop.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_ = c.call.Hangup(ctx)
		cancel()
		if c.phone != nil {
			_ = c.phone.Close()
		}
		d.current = nil
	}
	if d.phones != nil {
		for ext, p := range d.phones {
			if ext != "100" {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, _ = p.Unregister(ctx, "sip:127.0.0.1:5060")
				cancel()
			}
			_ = p.Close()
		}
		d.cancel()
	}
	if d.crmlink != nil && d.stoppedCrmlink && d.crmlink.exited() {
		fmt.Fprintln(d.out, "\n==> crmlink has stopped (the last scenario)")
	} else if d.crmlink != nil {
		fmt.Fprintln(d.out, "\n==> stopping crmlink (SIGTERM: calls in progress finish first)")
		start := time.Now()
		if err := d.crmlink.stop(40 * time.Second); err != nil {
			d.say("crmlink: %v", err)
		} else {
			d.say("crmlink stopped in %s, exit status 0; its last line: %s", time.Since(start).Round(time.Millisecond),
				lastMessage(filepath.Join(d.opts.work, "crmlink.log")))
		}
	}
	if d.crm != nil {
		if err := d.crm.stop(10 * time.Second); err != nil {
			d.say("amocrm-sandbox: %v", err)
		} else {
			d.say("amoCRM sandbox stopped")
		}
	}
	rigStopped := false
	if d.startedRig && d.opts.stopRig {
		// Stopped under the lock only: a test run that started meanwhile keeps its rig.
		if d.unlock == nil {
			d.unlock, _ = lockRig(context.Background(), d.opts.lock, 2*time.Minute, d.say)
		}
		if d.unlock != nil {
			fmt.Fprintln(d.out, "==> stopping the rig the demo started (docker/rig.sh down)")
			cmd := exec.Command(filepath.Join(d.opts.root, "docker", "rig.sh"), "down")
			w := prefixed(d.out, "    ")
			cmd.Dir, cmd.Stdout, cmd.Stderr = d.opts.root, w, w
			if err := cmd.Run(); err != nil {
				d.say("docker/rig.sh down: %v", err)
			} else {
				rigStopped = true
			}
		}
	}
	if d.unlock != nil {
		d.unlock()
		d.unlock = nil
	}
	switch {
	case rigStopped:
	case d.startedRig:
		d.say("the rig the demo started is still up: make sandbox-down stops it")
	default:
		d.say("the rig was running before the demo and is left running (make sandbox-down stops it)")
	}
}

func (d *demo) pointAtLogs() {
	fmt.Fprintf(d.out, "Logs: %s (crmlink.log, amocrm-sandbox.log); the configuration: %s\n",
		d.opts.work, filepath.Join(d.opts.work, "crmlink.yaml"))
}

// proc is a child process with its stderr in a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	werr error
}

func startProc(ctx context.Context, name, logPath, bin string, args ...string) (*proc, io.ReadCloser, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = logf
	// Dies with the demo even when the demo is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.werr = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, stdout, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) err() error { <-p.done; return p.werr }

// stop sends SIGTERM and waits; past the timeout it kills.
func (p *proc) stop(timeout time.Duration) error {
	if p.exited() {
		return fmt.Errorf("had already exited: %v", p.werr)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.werr != nil {
			return fmt.Errorf("exited with %v", p.werr)
		}
		return nil
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("did not stop within %s of SIGTERM: killed", timeout)
	}
}

func firstLine(r io.Reader, within time.Duration) (string, error) {
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(r)
		if s.Scan() {
			line <- strings.TrimSpace(s.Text())
		}
		close(line)
	}()
	select {
	case l, ok := <-line:
		if !ok {
			return "", errors.New("it exited")
		}
		return l, nil
	case <-time.After(within):
		return "", fmt.Errorf("nothing within %s", within)
	}
}

// waitFor polls cond until it holds, saying every few seconds what it waits for.
func waitFor(ctx context.Context, say func(string, ...any), what string, within time.Duration, cond func() (bool, error)) error {
	start := time.Now()
	next := start.Add(3 * time.Second)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			if d := time.Since(start); d > time.Second {
				say("%s: ready after %s", what, d.Round(100*time.Millisecond))
			}
			return nil
		}
		if time.Since(start) > within {
			return fmt.Errorf("timed out after %s waiting for %s", within, what)
		}
		if time.Now().After(next) {
			say("... waiting for %s (%s)", what, time.Since(start).Round(time.Second))
			next = time.Now().Add(3 * time.Second)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// lockRig takes the rig lock (flock(2), the same lock as `flock /tmp/crmlink-rig.lock`),
// saying while it waits for another run to finish.
func lockRig(ctx context.Context, path string, within time.Duration, say func(string, ...any)) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, fmt.Errorf("rig lock: %w", err)
	}
	try := func() (bool, error) {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return false, nil
		}
		return err == nil, err
	}
	if ok, err := try(); !ok {
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("rig lock: %w", err)
		}
		say("another run holds it (end-to-end tests or a benchmark placing calls); waiting")
		if err := waitFor(ctx, say, "the rig lock", within, try); err != nil {
			f.Close()
			return nil, err
		}
	}
	say("held")
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func rel(root, path string) string {
	if r, err := filepath.Rel(root, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// lastMessage is the message of the last JSON line of a zerolog file.
func lastMessage(path string) string {
	var m struct {
		Message string `json:"message"`
	}
	_ = json.Unmarshal([]byte(tail(path, 1)), &m)
	if m.Message == "" {
		return "(none)"
	}
	return fmt.Sprintf("%q", m.Message)
}

// prefixed indents every line written through it (rig.sh's progress under the demo's).
func prefixed(w io.Writer, prefix string) io.Writer { return &lineWriter{w: w, prefix: prefix} }

type lineWriter struct {
	w       io.Writer
	prefix  string
	partial []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.partial = append(l.partial, p...)
	for {
		i := strings.IndexByte(string(l.partial), '\n')
		if i < 0 {
			return len(p), nil
		}
		fmt.Fprintf(l.w, "%s%s\n", l.prefix, l.partial[:i])
		l.partial = l.partial[i+1:]
	}
}
