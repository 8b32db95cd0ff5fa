package testrig

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Exec runs a command in dir (the test's directory when empty) for at most timeout and
// returns its output, stdout and stderr together. A script's children (docker, tar,
// debootstrap) go with it when the time is up, and Exec returns even if one of them still
// holds the output pipe.
func Exec(t testing.TB, dir string, timeout time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// ComposeCommand is docker-compose, or the docker compose plugin, whichever exists.
func ComposeCommand() ([]string, error) {
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}, nil
	}
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}, nil
	}
	return nil, errors.New("neither docker-compose nor the docker compose plugin is installed (apt-get install docker-compose)")
}

// Flock holds a lock file (flock(2), as `flock FILE cmd`) until the returned func is called.
func Flock(t testing.TB, path string) (unlock func()) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		t.Fatalf("testrig: lock %s: %v", path, err)
	}
	start := time.Now()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("testrig: lock %s: %v", path, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Logf("waited %s for %s", d.Round(time.Second), path)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}
}

// RepoRoot is the repository's top directory, for tests that run its scripts.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root, err := filepath.Abs(filepath.Join(filepath.Dir(file), "..", ".."))
	if err != nil {
		t.Fatalf("testrig: repository root: %v", err)
	}
	return root
}

// Docker returns the Compose command for a test that needs Docker. Where `docker info` does
// not answer or Compose is missing, the test is skipped, or fails when the environment
// variable required is "required" (make compose-test, make test-cluster).
func Docker(t testing.TB, required string) (compose []string) {
	t.Helper()
	skipOrFail := t.Skipf
	if os.Getenv(required) == "required" {
		skipOrFail = t.Fatalf
	}
	if out, err := Exec(t, "", 15*time.Second, "docker", "info"); err != nil {
		lines := strings.Split(strings.TrimSpace(out), "\n")
		skipOrFail("docker info does not answer, so this test cannot run here: %v %s", err, lines[len(lines)-1])
	}
	compose, err := ComposeCommand()
	if err != nil {
		skipOrFail("%v", err)
	}
	return compose
}
