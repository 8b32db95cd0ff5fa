package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// UAC is one sipp caller run: Calls calls at Rate calls/s, each held HoldMS after the
// answer, then hung up by the caller.
type UAC struct {
	Scenario  string // path of the scenario file
	Target    string // host:port sipp sends to
	Service   string // the dialled number (-s)
	LocalIP   string // 127.0.0.2: the trunk's address
	LocalPort int
	Rate      int
	Calls     int
	HoldMS    int
	Callers   string // injection file: caller numbers
	Dir       string // working directory: sipp writes its rtt, stat and error files here
}

// UACResult is what sipp reported for one run.
type UACResult struct {
	Created, Successful, Failed int
	Retransmissions             int
	// Times are the INVITE to answer (200, or 302) times in ms, in the order answered;
	// At is when each answer came, in ms since sipp started.
	Times, At []float64
	ExitCode  int
	Killed    bool    // sipp did not stop by itself and was killed at the deadline
	Errors    string  // the first lines of sipp's error log
	CPU       float64 // CPU seconds sipp itself used
}

// sippVersion is what `sipp -v` says, for the report.
func sippVersion() string {
	out, _ := exec.Command("sipp", "-v").CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "SIPp") {
			return l
		}
	}
	return "unknown"
}

// Run places the calls and waits for sipp to finish, at most until the time the calls
// need plus a margin; sipp's own -timeout is the first net, the context's kill the second.
func (u UAC) Run(ctx context.Context) (UACResult, error) {
	if err := os.MkdirAll(u.Dir, 0o755); err != nil {
		return UACResult{}, err
	}
	sendFor := time.Duration(float64(u.Calls) / float64(u.Rate) * float64(time.Second))
	budget := sendFor + time.Duration(u.HoldMS)*time.Millisecond + 20*time.Second
	// Enough simultaneous calls for the offered rate with answers up to a few seconds late;
	// past that sipp holds back new calls and the step shows it as a rate not kept up.
	limit := u.Rate*(u.HoldMS/1000+4) + 50
	args := []string{
		u.Target,
		"-sf", u.Scenario,
		"-inf", u.Callers,
		"-s", u.Service,
		"-i", u.LocalIP, "-p", strconv.Itoa(u.LocalPort),
		"-r", strconv.Itoa(u.Rate), "-rp", "1000",
		"-m", strconv.Itoa(u.Calls),
		"-l", strconv.Itoa(limit),
		"-d", strconv.Itoa(u.HoldMS),
		"-recv_timeout", "5000",
		"-timeout", strconv.Itoa(int(budget.Seconds())) + "s",
		"-buff_size", "1048576",
		"-nostdin",
		"-trace_stat", "-stf", "stat.csv", "-fd", "1",
		"-trace_rtt", "-rtt_freq", "1", // sipp writes the samples in batches of this size, and drops a last partial batch
		"-trace_err", "-error_file", "errors.log",
	}
	ctx, cancel := context.WithTimeout(ctx, budget+10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sipp", args...)
	cmd.Dir = u.Dir
	out, err := os.Create(filepath.Join(u.Dir, "sipp.out"))
	if err != nil {
		return UACResult{}, err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	fmt.Fprintf(out, "# sipp %s\n", strings.Join(args, " "))
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGKILL) }
	runErr := cmd.Run()
	res := UACResult{}
	if ps := cmd.ProcessState; ps != nil {
		res.CPU = (ps.UserTime() + ps.SystemTime()).Seconds()
	}
	var exitErr *exec.ExitError
	switch {
	case runErr == nil:
	case ctx.Err() != nil:
		res.Killed = true
	case errors.As(runErr, &exitErr):
		res.ExitCode = exitErr.ExitCode()
	default:
		return res, fmt.Errorf("sipp: %w", runErr)
	}
	// Exit codes: 0 every call succeeded, 1 some failed, 97 stopped by command, 99 normal
	// exit with no call processed; anything else is sipp refusing to run.
	if res.ExitCode != 0 && res.ExitCode != 1 && res.ExitCode != 97 && res.ExitCode != 99 {
		return res, fmt.Errorf("sipp exited %d: %s", res.ExitCode, tail(filepath.Join(u.Dir, "sipp.out"), 6))
	}
	if err := readStat(filepath.Join(u.Dir, "stat.csv"), &res); err != nil {
		return res, err
	}
	if err := readRTT(u.Dir, &res); err != nil {
		return res, err
	}
	res.Errors = head(filepath.Join(u.Dir, "errors.log"), 3)
	if res.Killed {
		// Calls still open when sipp was killed never completed.
		res.Failed = max(res.Failed, res.Created-res.Successful)
	}
	return res, nil
}

// readStat takes the cumulative counters from the last line of sipp's statistics file.
func readStat(path string, res *UACResult) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("sipp statistics: %w", err)
	}
	defer f.Close()
	header, last, err := statRows(f)
	if err != nil {
		return fmt.Errorf("sipp statistics %s: %w", path, err)
	}
	get := func(name string) int {
		for i, h := range header {
			if h == name && i < len(last) {
				n, _ := strconv.Atoi(strings.TrimSpace(last[i]))
				return n
			}
		}
		return 0
	}
	res.Created = get("TotalCallCreated")
	res.Successful = get("SuccessfulCall(C)")
	res.Failed = get("FailedCall(C)")
	res.Retransmissions = get("Retransmissions(C)")
	return nil
}

// statRows returns the header and the last row of a sipp statistics file.
func statRows(r io.Reader) (header, last []string, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		cols := strings.Split(line, ";")
		if header == nil {
			header = cols
			continue
		}
		last = cols
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	if header == nil || last == nil {
		return nil, nil, errors.New("no statistics written")
	}
	return header, last, nil
}

// readRTT reads the response times sipp dumped (-trace_rtt): "Date_ms;response_time_ms;rtd_no".
func readRTT(dir string, res *UACResult) error {
	files, _ := filepath.Glob(filepath.Join(dir, "*_rtt.csv"))
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		at, times, err := parseRTT(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		res.At = append(res.At, at...)
		res.Times = append(res.Times, times...)
	}
	return nil
}

func parseRTT(r io.Reader) (at, times []float64, err error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Split(strings.TrimSpace(sc.Text()), ";")
		if len(f) < 3 || f[2] != "1" {
			continue // the header, or another response time
		}
		t, err1 := strconv.ParseFloat(f[0], 64)
		v, err2 := strconv.ParseFloat(f[1], 64)
		if err1 != nil || err2 != nil {
			continue
		}
		at = append(at, t)
		times = append(times, v)
	}
	return at, times, sc.Err()
}

// UAS is the sipp that answers for every manager phone and the operator desk.
type UAS struct {
	cmd  *exec.Cmd
	done chan struct{}
	out  *os.File
}

// StartUAS starts sipp's built-in UAS on addr (ip:port) and checks that it stays up.
func StartUAS(dir, ip string, port int) (*UAS, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	out, err := os.Create(filepath.Join(dir, "uas.out"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("sipp", "-sn", "uas", "-i", ip, "-p", strconv.Itoa(port), "-nostdin",
		"-buff_size", "1048576", "-trace_err", "-error_file", "uas-errors.log")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("sipp UAS: %w", err)
	}
	u := &UAS{cmd: cmd, done: make(chan struct{}), out: out}
	go func() { _ = cmd.Wait(); close(u.done) }()
	select {
	case <-u.done:
		out.Close()
		return nil, fmt.Errorf("sipp UAS on %s:%d exited at once: %s", ip, port, tail(out.Name(), 5))
	case <-time.After(300 * time.Millisecond):
	}
	return u, nil
}

// Pid is the UAS process id, for its CPU time.
func (u *UAS) Pid() int { return u.cmd.Process.Pid }

// Stop ends the UAS: SIGTERM, then SIGKILL after two seconds.
func (u *UAS) Stop() {
	if u == nil {
		return
	}
	stopProcess(u.cmd.Process, u.done, 2*time.Second)
	u.out.Close()
}

// WriteCallers writes a sipp injection file of caller numbers, used in order.
func WriteCallers(path string, numbers []string) error {
	var b strings.Builder
	b.WriteString("SEQUENTIAL\n")
	for _, n := range numbers {
		b.WriteString(n)
		b.WriteString(";\n")
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

func head(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.TrimSpace(strings.Join(lines, " | "))
}
