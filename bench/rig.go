package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Rig is the rig's Asterisk as the benchmark needs it: over ARI.
type Rig struct {
	ARI  string // http://127.0.0.1:8088/ari
	User string
	Pass string
	http *http.Client
}

// NewRig returns the rig at its fixed loopback address.
func NewRig() *Rig {
	return &Rig{ARI: "http://127.0.0.1:8088/ari", User: "crmlink", Pass: "crmlink", http: &http.Client{Timeout: 5 * time.Second}}
}

func (r *Rig) do(ctx context.Context, method, path string, out any) (int, error) {
	return r.doBody(ctx, method, path, nil, out)
}

func (r *Rig) doBody(ctx context.Context, method, path string, body []byte, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, r.ARI+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.SetBasicAuth(r.User, r.Pass)
	resp, err := r.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, err
		}
	}
	return resp.StatusCode, nil
}

// Version is Asterisk's version from ARI.
func (r *Rig) Version(ctx context.Context) string {
	var info struct {
		System struct {
			Version string `json:"version"`
		} `json:"system"`
	}
	if _, err := r.do(ctx, http.MethodGet, "/asterisk/info", &info); err != nil || info.System.Version == "" {
		return "unknown"
	}
	return info.System.Version
}

// benchEndpoints are the endpoints the benchmark's dialplan dials (asterisk-conf/pjsip.conf).
var benchEndpoints = []string{"bench-mgr1", "bench-mgr2", "bench-op"}

// Prepare makes sure Asterisk runs the benchmark's configuration: when the bench-*
// endpoints are missing (Asterisk started before asterisk-conf/ had them), it reloads
// PJSIP and the dialplan over ARI, which Docker's bind mount makes current.
func (r *Rig) Prepare(ctx context.Context) error {
	missing := func() string {
		for _, ep := range benchEndpoints {
			code, err := r.do(ctx, http.MethodGet, "/endpoints/PJSIP/"+ep, nil)
			if err != nil {
				return ep + " (" + err.Error() + ")"
			}
			if code != http.StatusOK {
				return ep
			}
		}
		return ""
	}
	m := missing()
	if m == "" {
		return nil
	}
	for _, mod := range []string{"res_pjsip.so", "pbx_config.so"} {
		if code, err := r.do(ctx, http.MethodPut, "/asterisk/modules/"+mod, nil); err != nil || code/100 != 2 {
			return fmt.Errorf("reload %s over ARI: %d %v", mod, code, err)
		}
	}
	time.Sleep(time.Second)
	if m = missing(); m != "" {
		return fmt.Errorf("Asterisk has no endpoint PJSIP/%s even after a reload: its configuration is not asterisk-conf/ (a chroot rig copies it at start: make sandbox-down sandbox-up)", m)
	}
	return nil
}

// Channels is how many channels Asterisk has now.
func (r *Rig) Channels(ctx context.Context) (int, error) {
	var chans []json.RawMessage
	code, err := r.do(ctx, http.MethodGet, "/channels", &chans)
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("GET /channels: %d", code)
	}
	return len(chans), nil
}

// benchCallers are the number prefixes of the benchmark's callers (bench/crm.go).
var benchCallers = []string{"749530", "749540"}

// Cleanup hangs up what the benchmark left in Asterisk (the manager legs on bench-*
// endpoints, trunk calls from the benchmark's numbers) and deletes crmlink bridges left
// empty; it touches nothing else. It returns the channels it hung up, one line each: id,
// name, state, caller, where in the dialplan (the Stasis application for a channel in one)
// and its age.
func (r *Rig) Cleanup(ctx context.Context) []string {
	var chans []struct {
		ID           string `json:"id"`
		Name         string `json:"name"`
		State        string `json:"state"`
		CreationTime string `json:"creationtime"`
		Caller       struct {
			Number string `json:"number"`
		} `json:"caller"`
		Dialplan struct {
			Context  string `json:"context"`
			Exten    string `json:"exten"`
			Priority int    `json:"priority"`
			AppName  string `json:"app_name"`
			AppData  string `json:"app_data"`
		} `json:"dialplan"`
	}
	if _, err := r.do(ctx, http.MethodGet, "/channels", &chans); err != nil {
		return nil
	}
	var hung []string
	for _, c := range chans {
		ours := strings.HasPrefix(c.Name, "PJSIP/bench-")
		for _, p := range benchCallers {
			ours = ours || strings.HasPrefix(c.Caller.Number, p)
		}
		if ours {
			if code, err := r.do(ctx, http.MethodDelete, "/channels/"+c.ID, nil); err == nil && code/100 == 2 {
				age := ""
				if t, err := time.Parse("2006-01-02T15:04:05.000-0700", c.CreationTime); err == nil {
					age = time.Since(t).Round(100 * time.Millisecond).String()
				}
				dp := c.Dialplan
				hung = append(hung, fmt.Sprintf("%s %s state=%s caller=%s at=%s,%s,%d app=%s(%s) age=%s",
					c.ID, c.Name, c.State, c.Caller.Number, dp.Context, dp.Exten, dp.Priority, dp.AppName, dp.AppData, age))
			}
		}
	}
	time.Sleep(500 * time.Millisecond)
	var brs []struct {
		ID       string   `json:"id"`
		Channels []string `json:"channels"`
	}
	if _, err := r.do(ctx, http.MethodGet, "/bridges", &brs); err == nil {
		for _, b := range brs {
			if strings.HasPrefix(b.ID, "crmlink-br-") && len(b.Channels) == 0 {
				_, _ = r.do(ctx, http.MethodDelete, "/bridges/"+b.ID, nil)
			}
		}
	}
	return hung
}

// WaitIdle waits until Asterisk has no channel left, up to timeout; it returns how many
// were left.
func (r *Rig) WaitIdle(ctx context.Context, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for {
		n, err := r.Channels(ctx)
		if (err == nil && n == 0) || time.Now().After(deadline) || ctx.Err() != nil {
			return n
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// RigLock is the rig lock every test and benchmark that places calls holds: flock(2) on
// the file, the same lock as `flock /tmp/crmlink-rig.lock` in the Makefile.
type RigLock struct {
	Path   string
	f      *os.File
	Waited time.Duration // total time spent waiting for others
}

// Lock takes the lock, saying so when somebody else holds it.
func (l *RigLock) Lock(ctx context.Context, say func(string, ...any)) error {
	f, err := os.OpenFile(l.Path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return fmt.Errorf("rig lock: %w", err)
	}
	start := time.Now()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if err != syscall.EWOULDBLOCK {
			f.Close()
			return fmt.Errorf("rig lock %s: %w", l.Path, err)
		}
		say("waiting for the rig lock %s (the end-to-end tests or another benchmark hold it)", l.Path)
		// A blocking flock, as `flock` the command waits: woken with the other waiters when
		// the lock is released (polling would lose every race to them).
		got := make(chan error, 1)
		var mu sync.Mutex
		abandoned := false
		go func() {
			err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
			mu.Lock()
			defer mu.Unlock()
			if abandoned {
				f.Close() // releases the lock if it was taken
				return
			}
			got <- err
		}()
		select {
		case err := <-got:
			if err != nil {
				f.Close()
				return fmt.Errorf("rig lock %s: %w", l.Path, err)
			}
		case <-ctx.Done():
			mu.Lock()
			abandoned = true
			select {
			case err := <-got: // taken meanwhile
				if err == nil {
					f.Close()
				}
			default:
			}
			mu.Unlock()
			return ctx.Err()
		}
	}
	l.Waited += time.Since(start)
	l.f = f
	return nil
}

// Unlock releases the lock; unlocking an unlocked lock does nothing.
func (l *RigLock) Unlock() {
	if l.f != nil {
		_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
		l.f.Close()
		l.f = nil
	}
}
