package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ReopeningDisk is the disk queue as a server runs it: a store that cannot be opened or
// breaks (a full, read-only or damaged data directory) does not stop the process. Run
// opens it again with backoff until it works; meanwhile Publish and the dead-letter
// calls fail with ErrUnavailable, and Health says why.
type ReopeningDisk struct {
	dir  string
	opts DiskOptions

	mu     sync.Mutex
	d      *Disk // nil while the store is not open
	closed bool
	health storeHealth // failures to open, and stores dropped
	// dropped is when a store was last dropped; fails counts drops in a row, each within
	// storeBackoffMax of the one before, so that a store that opens and breaks at once
	// is retried with growing pauses and logged at a bounded rate.
	dropped time.Time
	fails   int
	done    chan struct{}
	stop    chan struct{}
}

var _ Queue = (*ReopeningDisk)(nil)

// OpenDisk opens the disk queue in dir like NewDisk, except that a storage failure is not
// an error: the store is opened later by Run. Bad options and a directory held by another
// process are errors.
func OpenDisk(dir string, opts DiskOptions) (*ReopeningDisk, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &ReopeningDisk{dir: dir, opts: opts, stop: make(chan struct{})}
	r.health.log = opts.Logger.With().Str("component", "queue").Str("store", "disk").Logger()
	if _, err := r.open(); err != nil {
		var inUse inUseError
		if errors.As(err, &inUse) {
			return nil, err
		}
	}
	return r, nil
}

// open returns the open store, opening it if it is not.
func (r *ReopeningDisk) open() (*Disk, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	if r.d != nil {
		return r.d, nil
	}
	d, err := NewDisk(r.dir, r.opts)
	if err != nil {
		r.health.failed(err, "event queue cannot be opened; routing goes on, events are refused (webhooks answered 503) until it opens")
		return nil, err
	}
	if time.Since(r.dropped) > storeBackoffMax {
		r.health.ok("event queue opened")
	}
	r.d = d
	return d, nil
}

// current is the open store, or ErrUnavailable with the reason.
func (r *ReopeningDisk) current() (*Disk, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return nil, ErrClosed
	case r.d == nil:
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, r.health.state())
	}
	return r.d, nil
}

// drop closes a store that failed so that Run opens it afresh.
func (r *ReopeningDisk) drop(d *Disk, cause error) {
	r.mu.Lock()
	if r.d == d {
		r.d = nil
	}
	if time.Since(r.dropped) > storeBackoffMax {
		r.fails = 0
	}
	r.fails++
	r.dropped = time.Now()
	r.mu.Unlock()
	_ = d.Close()
	r.health.failed(cause, "event queue stopped on a storage failure; routing goes on, reopening it")
}

// Health is nil while the store is open and takes writes, else why it does not.
func (r *ReopeningDisk) Health() error {
	d, err := r.current()
	if err != nil {
		return err
	}
	return d.Health()
}

// Publish implements Queue.
func (r *ReopeningDisk) Publish(ctx context.Context, e Event) error {
	d, err := r.current()
	if err != nil {
		return fmt.Errorf("queue: publish %q: %w", e.ID, err)
	}
	return d.Publish(ctx, e)
}

// Run implements Queue: it delivers events while the store is open and opens it again,
// with backoff, when it cannot be opened or fails.
func (r *ReopeningDisk) Run(ctx context.Context, h Handler) error {
	if h == nil {
		return errors.New("queue: Run needs a Handler")
	}
	r.mu.Lock()
	if r.done != nil {
		r.mu.Unlock()
		return ErrRunning
	}
	done := make(chan struct{})
	r.done = done
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.done = nil
		r.mu.Unlock()
		close(done)
	}()
	for n := 1; ; n++ {
		d, err := r.open()
		if errors.Is(err, ErrClosed) {
			return nil
		}
		if err == nil {
			err = d.Run(ctx, h)
			if err == nil || errors.Is(err, ErrClosed) || ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, ErrRunning) {
				return err
			}
			r.drop(d, err)
			r.mu.Lock()
			n = r.fails
			r.mu.Unlock()
		}
		pause(StoreBackoff(n), ctx.Done(), r.stop)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// Dead implements Queue.
func (r *ReopeningDisk) Dead(ctx context.Context, limit int) ([]Event, error) {
	d, err := r.current()
	if err != nil {
		return nil, err
	}
	return d.Dead(ctx, limit)
}

// Replay implements Queue.
func (r *ReopeningDisk) Replay(ctx context.Context, id string) error {
	d, err := r.current()
	if err != nil {
		return err
	}
	return d.Replay(ctx, id)
}

// Stats implements Queue.
func (r *ReopeningDisk) Stats(ctx context.Context) (Stats, error) {
	d, err := r.current()
	if err != nil {
		return Stats{}, err
	}
	return d.Stats(ctx)
}

// Close implements Queue.
func (r *ReopeningDisk) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.stop)
	d, done := r.d, r.done
	r.d = nil
	r.mu.Unlock()
	var err error
	if d != nil {
		err = d.Close()
	}
	if done != nil {
		<-done
	}
	return err
}
