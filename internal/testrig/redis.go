// Package testrig gives tests the real parts of the test rig: a Redis server and the
// Asterisk 22 that `make sandbox-up` starts. Tests ask it for addresses instead of
// hard-coding them; a missing part fails the test unless the rig is explicitly absent.
package testrig

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	redisOnce sync.Once
	redisAddr string
	redisErr  error
)

// RedisAddr returns the address of a real Redis server for tests: CRMLINK_TEST_REDIS when
// set (make test points it at the rig's Redis), otherwise a redis-server started for this
// test binary on a free loopback port and stopped when the process exits.
func RedisAddr(t testing.TB) string {
	t.Helper()
	redisOnce.Do(func() {
		if a := os.Getenv("CRMLINK_TEST_REDIS"); a != "" {
			redisAddr = a
			redisErr = ping(a)
			return
		}
		redisAddr, redisErr = startRedis()
	})
	if redisErr != nil {
		t.Fatalf("testrig: no Redis for the test (run `make sandbox-up` or install redis-server): %v", redisErr)
	}
	return redisAddr
}

// Redis returns a client on a database of its own, flushed before the test.
func Redis(t testing.TB) *redis.Client {
	t.Helper()
	addr, db := RedisDB(t)
	c := redis.NewClient(&redis.Options{Addr: addr, DB: db})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// RedisDB returns the Redis address and a logical database (1-15) leased to the test until
// it ends, flushed: test binaries of several packages run at once against the rig's Redis,
// and a lease (a SET NX key in database 0) keeps them from flushing each other's data.
func RedisDB(t testing.TB) (addr string, db int) {
	t.Helper()
	addr = RedisAddr(t)
	ctl := redis.NewClient(&redis.Options{Addr: addr})
	defer ctl.Close()
	ctx := context.Background()
	owner := fmt.Sprintf("%d:%s", os.Getpid(), t.Name())
	deadline := time.Now().Add(60 * time.Second)
	start := os.Getpid() % 15
	for {
		for i := 0; i < 15; i++ {
			db = (start+i)%15 + 1
			key := fmt.Sprintf("crmlink:testrig:lease:%d", db)
			ok, err := ctl.SetNX(ctx, key, owner, 10*time.Minute).Result()
			if err != nil {
				t.Fatalf("testrig: lease a redis db: %v", err)
			}
			if !ok {
				continue
			}
			t.Cleanup(func() {
				c := redis.NewClient(&redis.Options{Addr: addr})
				defer c.Close()
				if v, _ := c.Get(context.Background(), key).Result(); v == owner {
					c.Del(context.Background(), key)
				}
			})
			c := redis.NewClient(&redis.Options{Addr: addr, DB: db})
			defer c.Close()
			if err := c.FlushDB(ctx).Err(); err != nil {
				t.Fatalf("testrig: flush redis db %d: %v", db, err)
			}
			return addr, db
		}
		if time.Now().After(deadline) {
			t.Fatalf("testrig: all 15 redis databases stayed leased for a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ping(addr string) error {
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}

func startRedis() (string, error) {
	addr, stop, err := startRedisServer()
	if err != nil {
		return "", err
	}
	registerCleanup(stop)
	return addr, nil
}

// PrivateRedis starts a redis-server of the test's own, stopped when the test ends, for a
// test that changes the server itself (CONFIG SET), which the shared rig's Redis must never
// see. args are extra redis-server options; the default is no persistence at all.
func PrivateRedis(t testing.TB, args ...string) string {
	t.Helper()
	addr, stop, err := startRedisServer(args...)
	if err != nil {
		t.Fatalf("testrig: no private Redis for the test (install redis-server): %v", err)
	}
	t.Cleanup(stop)
	return addr
}

// startRedisServer runs redis-server on a free loopback port with a data directory of its
// own; stop kills it and removes the directory.
func startRedisServer(args ...string) (addr string, stop func(), err error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, fmt.Errorf("redis-server not found: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "crmlink-redis-")
	if err != nil {
		return "", nil, err
	}
	addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(bin, append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no"}, args...)...)
	// Dies with the test binary even when it is killed on a timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return "", nil, fmt.Errorf("start redis-server: %w", err)
	}
	stop = func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait(); _ = os.RemoveAll(dir) }
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := ping(addr); err == nil {
			return addr, stop, nil
		} else if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("redis-server on %s did not answer: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var (
	cleanupMu sync.Mutex
	cleanups  []func()
)

func registerCleanup(f func()) {
	cleanupMu.Lock()
	defer cleanupMu.Unlock()
	cleanups = append(cleanups, f)
}

// Main wraps testing.M.Run so servers started for the package are stopped afterwards:
// func TestMain(m *testing.M) { testrig.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	cleanupMu.Lock()
	for _, f := range cleanups {
		f()
	}
	cleanupMu.Unlock()
	os.Exit(code)
}
