package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
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
