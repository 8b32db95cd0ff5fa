package e2e

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/internal/testrig"
)

// `make sandbox-up` on a running rig returns at once: the daemons the rig started do not
// hold the rig's lock, so the next rig command (up, down, the Compose test's rootfs) is
// not left waiting. CI once hung for its whole time limit on exactly that.
func TestRigCommandsDoNotWaitOnTheRunningRig(t *testing.T) {
	testrig.Asterisk(t)
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(root, "docker", "rig.sh"), "up")
	// The script gives up on the lock after 15 s and names its holders.
	cmd.Env = append(os.Environ(), "CRMLINK_RIG_LOCK_WAIT=15")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "docker/rig.sh up on the running rig:\n%s", out)
	require.Less(t, time.Since(start), 10*time.Second, "docker/rig.sh up on the running rig:\n%s", out)
	require.Contains(t, string(out), "Asterisk already answers", "the running rig was left as it was")
}

// The rig's daemons keep no descriptor of whoever started them: `flock FILE make
// sandbox-up` once left FILE locked by the rig's redis-server until `make sandbox-down`.
// The running rig's Asterisk is left alone; a second redis-server is started on a port and
// run directory of the test's own and stopped at the end.
func TestRigDaemonsDoNotHoldTheStartersFiles(t *testing.T) {
	testrig.Asterisk(t)
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	lockFile := filepath.Join(t.TempDir(), "caller.lock")
	run := t.TempDir()
	port := freePort(t)
	t.Cleanup(func() {
		if pid, err := os.ReadFile(filepath.Join(run, "redis.pid")); err == nil {
			if n, err := strconv.Atoi(strings.TrimSpace(string(pid))); err == nil {
				_ = syscall.Kill(n, syscall.SIGTERM)
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "flock", lockFile, filepath.Join(root, "docker", "rig.sh"), "up")
	cmd.Env = append(os.Environ(), "CRMLINK_RIG_LOCK_WAIT=15", "CRMLINK_RIG_RUN="+run, "CRMLINK_RIG_REDIS_PORT="+strconv.Itoa(port))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "flock FILE docker/rig.sh up:\n%s", out)
	pid, err := os.ReadFile(filepath.Join(run, "redis.pid"))
	require.NoError(t, err, "the rig started its own redis-server:\n%s", out)

	f, err := os.Open(lockFile)
	require.NoError(t, err)
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	held, _ := os.ReadDir("/proc/" + strings.TrimSpace(string(pid)) + "/fd")
	var open []string
	for _, fd := range held {
		if target, _ := os.Readlink("/proc/" + strings.TrimSpace(string(pid)) + "/fd/" + fd.Name()); target != "" {
			open = append(open, fd.Name()+" -> "+target)
		}
	}
	require.NoError(t, err, "flock(1) has exited, yet %s is still locked; redis-server (pid %s) holds: %v", lockFile, strings.TrimSpace(string(pid)), open)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
