package testrig

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Run runs a long-running part (a controller's Run, an app's Serve) until the test ends or
// the returned stop is called, whichever is first: stop cancels its context and waits up
// to 10 s for it to return without an error; after, when set, runs once it has (closing
// what the part used). stop may be called more than once.
func Run(t testing.TB, what string, run func(ctx context.Context) error, after func()) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("%s stopped with an error: %v", what, err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("%s did not stop within 10 s", what)
			}
			if after != nil {
				after()
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
