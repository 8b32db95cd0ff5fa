package queue

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"time"

	"github.com/rs/zerolog"
)

// delivery is one stored event handed to the engine; ref is the store's handle for it
// (a stream entry ID, a position in the disk log).
type delivery struct {
	event Event
	ref   any
	key   string
	waits int // begin answered turnWait this many times in a row
	// waitFor is the event of its key that goes first (turnWait), when the store knows it.
	waitFor string
	// blockedBy is the earlier event of its key that waits for its retry (failed, or parked
	// by another consumer) until blockedUntil (turnBlocked).
	blockedBy    string
	blockedUntil time.Time
}

// store is what a queue implementation gives the engine: a source of deliveries and the
// ways to settle one. Every settle call is durable when it returns nil; a store that keeps
// a settle in memory while its files cannot be written (Disk) may deliver that event once
// more after a restart, which the at-least-once promise allows.
type store interface {
	// feed submits stored events through eng until ctx ends. A non-nil error means the
	// store is unusable and stops Run with that error.
	feed(ctx context.Context, eng *engine) error
	ack(ctx context.Context, d *delivery) error
	// retry stores next for delivery at `at` and settles d; failed tells a failed attempt
	// from an event parked behind a failed one of the same ordering key.
	retry(ctx context.Context, d *delivery, next Event, at time.Time, failed bool) error
	bury(ctx context.Context, d *delivery, dead Event) error
	// release gives d back unsettled: it stays stored and is delivered again.
	release(d *delivery)
}

// exclusive is a store whose consumers share events (Redis: several instances in one
// consumer group), where one event could reach two consumers at once: a live consumer taken
// for dead (its refreshes failed through a failover) and the one that claimed its entries, or
// a delivery a failover lost; and where two events of one ordering key can reach two
// consumers at once (each instance reads the next entries of the stream). begin takes the
// event for this consumer just before its handler runs, and for an event with an ordering
// key the key too; see turn for the answers. stop ends the handler's context with
// errLeaseLost once the store can no longer be sure the event (or its key) is still this
// consumer's.
type exclusive interface {
	begin(ctx context.Context, d *delivery, stop context.CancelCauseFunc) (turn, error)
}

// turn is exclusive.begin's answer.
type turn int

const (
	// turnMine: the handler runs.
	turnMine turn = iota
	// turnElsewhere: another consumer is handling this event; the delivery is left alone.
	turnElsewhere
	// turnWait: another consumer is handling another event of its ordering key, or an
	// earlier event of the key (d.waitFor) is still unsettled: the delivery stays in memory
	// (its key busy, so the events behind it in this instance wait too) and asks again
	// shortly, unless d.waitFor is queued behind it here: then that one goes first.
	turnWait
	// turnGone: the event was settled meanwhile (by the consumer that had it); nothing to do.
	turnGone
	// turnBlocked: an earlier event of its key (d.blockedBy) waits for its retry, due at
	// d.blockedUntil (it failed, maybe on another consumer): this instance blocks the key on
	// it as if it had failed here (the delivery and the ones behind it are parked until then).
	turnBlocked
)

// Pauses between the begin calls of a delivery that waits for its turn: short at first
// (the other instance's event is usually a few CRM requests long), at most waitPauseMax.
const (
	waitPauseMin = 20 * time.Millisecond
	waitPauseMax = time.Second
)

func waitPause(n int) time.Duration {
	if n > 6 {
		return waitPauseMax
	}
	return min(waitPauseMin<<max(n-1, 0), waitPauseMax)
}

// errLeaseLost ends a handler's context when another consumer may have taken its event
// over: the attempt stops before its next write, and the event is neither acknowledged nor
// retried here (the other consumer settles it).
var errLeaseLost = errors.New("queue: the event's lease ran out (this consumer could not refresh it); another consumer may handle it now")

// opTimeout bounds one settle call; a store that does not answer in time leaves the event
// unsettled, to be delivered again.
const opTimeout = 10 * time.Second

type result struct {
	d       *delivery
	run     bool      // a handler call rather than a parking
	retryAt time.Time // set when the call failed and a retry is stored
	wait    bool      // not its turn (turnWait): asks again after a pause, still holding its slot
	blocked bool      // turnBlocked: parked behind another consumer's failed event
}

// keyState tracks one ordering key: at most one of its events is ready or running, the
// rest wait behind it in publish order. After a failure the key is blocked until the failed
// event comes back from its retry, and the events behind it are parked (stored for later
// delivery) in order; until the parked ones are back, new events park behind them too.
// Parked events that come back early or out of order (a store delivers due events in
// batches) wait in returned until every event parked before them is back.
type keyState struct {
	busy    bool
	waiting []*delivery
	// blocker is the ID of the failed event the key waits for, due at blockerDue (it may
	// have failed on another consumer: the store's begin tells, turnBlocked).
	blocker    string
	blockerDue time.Time
	// parked maps the IDs of parked events to their place in the order and the time after
	// which they are presumed delivered elsewhere (another Redis consumer).
	parked   map[string]parking
	returned map[string]*delivery
	lastPark time.Time
	nextSeq  uint64
}

// parking is a parked event's place in its key's order (seq, kept when it is parked
// again) and when it is due back.
type parking struct {
	seq      uint64
	at, lost time.Time
}

// lostAfter is how long past its due time a blocker or parked event is waited for before
// it is presumed taken by another consumer; it bounds how long a key can stall.
const lostAfter = 10 * time.Second

func (k *keyState) expire(now time.Time) {
	if k.blocker != "" && now.After(k.blockerDue.Add(lostAfter)) {
		k.blocker = ""
	}
	for id, p := range k.parked {
		if _, back := k.returned[id]; !back && now.After(p.lost) {
			delete(k.parked, id)
		}
	}
}

// nextParked is the earliest parked event still outstanding or returned.
func (k *keyState) nextParked() string {
	first := ""
	for id, p := range k.parked {
		if first == "" || p.seq < k.parked[first].seq {
			first = id
		}
	}
	return first
}

func (k *keyState) idle() bool {
	return !k.busy && len(k.waiting) == 0 && k.blocker == "" && len(k.parked) == 0 && len(k.returned) == 0
}

// engine runs a Handler over a store: Concurrency workers, ordering keys, retry and
// dead-letter decisions, graceful shutdown. Its loop owns all fields below log; workers
// report back through results.
type engine struct {
	opts Options
	st   store
	h    Handler
	log  zerolog.Logger

	// slots bound the deliveries held in memory (queued, running or being settled): a
	// store acquires one per event before reading it, the loop gives it back when the event
	// is settled or released.
	slots   chan struct{}
	in      chan *delivery
	stop    chan struct{}
	results chan result
	base    context.Context // parent of handler contexts; cancelled when the grace ends
	// ordered: the store keeps each key's order across consumers itself (exclusive.begin),
	// so events parked behind a failure need not come back in their parked order here.
	ordered bool

	ready   []*delivery
	keys    map[string]*keyState
	running int
	busy    int // running handlers plus parkings in progress

	// waiting are the deliveries that wait for their turn (turnWait), each with the timer
	// that hands it back through again.
	waiting map[*delivery]*time.Timer
	again   chan *delivery

	// storing tracks settle calls the store refuses: each is retried after a pause that
	// grows with the streak, holding its worker, so a store that cannot record outcomes
	// stops handler calls (and their CRM requests) instead of re-running them at once.
	storing storeHealth
}

func run(ctx context.Context, st store, h Handler, opts Options) error {
	if h == nil {
		return errors.New("queue: Run needs a Handler")
	}
	held := 2 * opts.Concurrency
	e := &engine{
		opts:    opts,
		st:      st,
		h:       h,
		log:     opts.Logger,
		slots:   make(chan struct{}, held),
		in:      make(chan *delivery),
		stop:    make(chan struct{}),
		results: make(chan result, held),
		keys:    map[string]*keyState{},
		waiting: map[*delivery]*time.Timer{},
		again:   make(chan *delivery),
	}
	e.storing.log = opts.Logger
	_, e.ordered = st.(exclusive)
	return e.loop(ctx)
}

// acquire blocks for one slot and then takes up to max-1 more that are free; 0 when the
// engine is stopping.
func (e *engine) acquire(ctx context.Context, max int) int {
	select {
	case e.slots <- struct{}{}:
	case <-ctx.Done():
		return 0
	case <-e.stop:
		return 0
	}
	return 1 + e.tryAcquire(max-1)
}

// tryAcquire takes up to max free slots without waiting.
func (e *engine) tryAcquire(max int) int {
	n := 0
	for n < max {
		select {
		case e.slots <- struct{}{}:
			n++
		default:
			return n
		}
	}
	return n
}

// give returns n slots a store acquired and did not use.
func (e *engine) give(n int) {
	for range n {
		<-e.slots
	}
}

// submit hands d, which holds one acquired slot, to the engine; when the engine is
// stopping, d is released instead.
func (e *engine) submit(d *delivery) {
	select {
	case e.in <- d:
	case <-e.stop:
		e.st.release(d)
		e.give(1)
	}
}

func (e *engine) loop(ctx context.Context) error {
	feedCtx, stopFeed := context.WithCancel(ctx)
	defer stopFeed()
	base, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	e.base = base

	feedDone := make(chan error, 1)
	go func() { feedDone <- e.st.feed(feedCtx, e) }()

	var (
		fatal    error
		stopping bool
		feeding  = true
		done     = ctx.Done()
		grace    *time.Timer
		graceC   <-chan time.Time
	)
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	beginStop := func() {
		if stopping {
			return
		}
		stopping = true
		close(e.stop)
		stopFeed()
		e.releaseQueued()
		grace = time.NewTimer(e.opts.ShutdownGrace)
		graceC = grace.C
	}
	defer func() {
		if grace != nil {
			grace.Stop()
		}
	}()

	for {
		if stopping && !feeding && e.busy == 0 {
			return fatal
		}
		select {
		case d := <-e.in:
			if stopping {
				e.st.release(d)
				e.give(1)
				continue
			}
			e.accept(d)
		case r := <-e.results:
			e.finish(r, stopping)
		case d := <-e.again:
			if _, ok := e.waiting[d]; ok && !stopping {
				delete(e.waiting, d)
				e.ready = append(e.ready, d)
			}
		case err := <-feedDone:
			feeding = false
			if err == nil && !stopping && ctx.Err() == nil {
				err = errors.New("queue: the store stopped delivering events")
			}
			if err != nil {
				fatal = err
				e.log.Error().Err(err).Msg("event queue store failed; stopping delivery")
			}
			beginStop()
		case <-done:
			done = nil
			beginStop()
		case <-graceC:
			graceC = nil
			if e.running > 0 {
				e.log.Warn().Int("running", e.running).Dur("grace", e.opts.ShutdownGrace).
					Msg("event handlers still running after the shutdown grace; cancelling them, their events will be delivered again")
			}
			cancelHandlers()
		case <-sweep.C:
			e.sweepKeys()
		}
		if !stopping {
			e.dispatch()
		}
	}
}

// accept queues d, or parks it to keep the order of its key.
func (e *engine) accept(d *delivery) {
	if e.opts.OrderKey != nil {
		d.key = e.opts.OrderKey(d.event)
	}
	if d.key == "" {
		e.ready = append(e.ready, d)
		return
	}
	k := e.keys[d.key]
	if k == nil {
		k = &keyState{parked: map[string]parking{}, returned: map[string]*delivery{}}
		e.keys[d.key] = k
	}
	k.expire(time.Now())
	_, returning := k.parked[d.event.ID]
	switch {
	case k.blocker != "" && d.event.ID == k.blocker:
		k.blocker = ""
		e.queue(d, k)
	case returning && e.ordered:
		// The store's begin keeps the key's order across consumers (the events parked
		// before it may come back to another one): it asks the store for its turn.
		delete(k.parked, d.event.ID)
		e.queue(d, k)
	case returning && k.blocker != "":
		// Back before the event it waits for (which failed again): park it once more, in
		// its place.
		e.park(d, k)
	case returning:
		k.returned[d.event.ID] = d
	case k.blocker != "" || len(k.parked) > 0 && !e.ordered:
		e.park(d, k) // a new event must not overtake the failed or parked ones
	default:
		e.queue(d, k)
	}
	e.flushReturned(k)
}

// flushReturned queues returned parked events in their parked order, as far as nothing
// before them is still outstanding, and never ahead of the blocker.
func (e *engine) flushReturned(k *keyState) {
	for k.blocker == "" {
		id := k.nextParked()
		d, back := k.returned[id]
		if id == "" || !back {
			return
		}
		delete(k.parked, id)
		delete(k.returned, id)
		e.queue(d, k)
	}
}

func (e *engine) queue(d *delivery, k *keyState) {
	if k.busy {
		k.waiting = append(k.waiting, d)
		return
	}
	k.busy = true
	e.ready = append(e.ready, d)
}

func (e *engine) dispatch() {
	for e.running < e.opts.Concurrency && len(e.ready) > 0 {
		d := e.ready[0]
		e.ready[0] = nil
		e.ready = e.ready[1:]
		e.running++
		e.busy++
		go e.work(d)
	}
}

// park stores d for delivery just after the event its key waits for, without counting an
// attempt: that keeps publish order per key across retries without holding events in
// memory for the length of a backoff.
func (e *engine) park(d *delivery, k *keyState) {
	at := time.Now()
	for _, t := range []time.Time{k.blockerDue, k.lastPark} {
		if t.After(at) {
			at = t
		}
	}
	at = ceilMilli(at).Add(time.Millisecond)
	k.lastPark = at
	p, again := k.parked[d.event.ID]
	if !again {
		k.nextSeq++
		p.seq = k.nextSeq
	}
	p.at, p.lost = at, at.Add(lostAfter)
	k.parked[d.event.ID] = p
	e.busy++
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		r := result{d: d}
		err := e.st.retry(ctx, d, d.event, at, false)
		e.settled(d, err, "event queue: could not park an event behind its ordering key; it will be delivered again")
		e.results <- r
	}()
}

func (e *engine) finish(r result, stopping bool) {
	e.busy--
	if r.run {
		e.running--
	}
	if r.wait || r.blocked {
		k := e.keys[r.d.key]
		switch {
		case stopping || k == nil:
			e.st.release(r.d)
			e.give(1)
		case r.wait:
			e.waitTurn(r.d)
		default:
			e.blockOn(r.d, k)
		}
		return
	}
	e.give(1)
	if !r.run || r.d.key == "" || stopping {
		return
	}
	key := r.d.key
	k := e.keys[key]
	if k == nil {
		return
	}
	switch {
	case !r.retryAt.IsZero():
		k.blocker, k.blockerDue = r.d.event.ID, r.retryAt
		k.busy = false
		waiting := k.waiting
		k.waiting = nil
		for _, w := range waiting {
			e.park(w, k)
		}
	case len(k.waiting) > 0:
		next := k.waiting[0]
		k.waiting[0] = nil
		k.waiting = k.waiting[1:]
		e.ready = append(e.ready, next)
	default:
		k.busy = false
	}
	if k.idle() {
		delete(e.keys, key)
	}
}

// blockOn blocks d's key on the earlier event waiting for its retry (turnBlocked), as finish
// does on a failure here: d and the events waiting behind it are parked (their slots are
// given back when the parkings end) until just after that retry.
func (e *engine) blockOn(d *delivery, k *keyState) {
	waiting := append([]*delivery{d}, k.waiting...)
	k.waiting = nil
	k.busy = false
	d.waits = 0
	for i, w := range waiting {
		if w.event.ID == d.blockedBy { // the failed event is back here already: it goes first
			waiting = slices.Delete(waiting, i, i+1)
			k.busy = true
			e.ready = append(e.ready, w)
			break
		}
	}
	if !k.busy {
		k.blocker, k.blockerDue = d.blockedBy, d.blockedUntil
	}
	for _, w := range waiting {
		e.park(w, k)
	}
}

// waitTurn hands d back to ready after a pause, unless the event its key waits for is
// queued behind it in this instance (claimed from a dead consumer, or back from a parking,
// after d was read): that one goes first, d right behind it.
func (e *engine) waitTurn(d *delivery) {
	if k := e.keys[d.key]; k != nil && d.waitFor != "" {
		var first *delivery
		if w, back := k.returned[d.waitFor]; back {
			first = w
			delete(k.returned, d.waitFor)
			delete(k.parked, d.waitFor)
		} else if i := slices.IndexFunc(k.waiting, func(w *delivery) bool { return w.event.ID == d.waitFor }); i >= 0 {
			first = k.waiting[i]
			k.waiting = slices.Delete(k.waiting, i, i+1)
		}
		if first != nil {
			k.waiting = slices.Insert(k.waiting, 0, d)
			d.waits = 0
			e.ready = append(e.ready, first)
			return
		}
	}
	d.waits++
	e.waiting[d] = time.AfterFunc(waitPause(d.waits), func() {
		select {
		case e.again <- d:
		case <-e.stop:
		}
	})
}

// releaseQueued gives back every delivery not yet running; the store delivers them again.
func (e *engine) releaseQueued() {
	n := 0
	for _, d := range e.ready {
		e.st.release(d)
		n++
	}
	for d, t := range e.waiting {
		t.Stop()
		e.st.release(d)
		n++
	}
	e.waiting = map[*delivery]*time.Timer{}
	for _, k := range e.keys {
		for _, d := range k.waiting {
			e.st.release(d)
			n++
		}
		for _, d := range k.returned {
			e.st.release(d)
			n++
		}
	}
	e.ready = nil
	e.keys = map[string]*keyState{}
	e.give(n)
}

func (e *engine) sweepKeys() {
	now := time.Now()
	for key, k := range e.keys {
		k.expire(now)
		e.flushReturned(k)
		if k.idle() {
			delete(e.keys, key)
		}
	}
}

// work calls the handler for d and settles the outcome in the store.
func (e *engine) work(d *delivery) {
	ev := d.event
	r := result{d: d, run: true}
	hctx, stop := context.WithCancelCause(e.base)
	defer stop(nil)
	if ex, ok := e.st.(exclusive); ok {
		bctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		t, err := ex.begin(bctx, d, stop)
		cancel()
		switch {
		case err != nil:
			e.settled(d, err, "event queue: could not take an event for this consumer; it will be delivered again")
			e.results <- r
			return
		case t == turnElsewhere:
			e.log.Info().Str("event", ev.ID).Str("kind", ev.Kind).Msg("event is being handled by another consumer; leaving it to that one")
			e.st.release(d)
			e.results <- r
			return
		case t == turnGone:
			e.log.Debug().Str("event", ev.ID).Str("kind", ev.Kind).Msg("event settled by another consumer meanwhile")
			e.st.release(d)
			e.results <- r
			return
		case t == turnBlocked:
			e.log.Debug().Str("event", ev.ID).Str("kind", ev.Kind).Str("order_key", d.key).Str("after", d.blockedBy).
				Msg("event parked behind an earlier event of its order key that waits for its retry")
			r.blocked = true
			e.results <- r
			return
		case t == turnWait:
			if d.waits == 0 {
				e.log.Debug().Str("event", ev.ID).Str("kind", ev.Kind).Str("order_key", d.key).
					Msg("event waits for its turn: another instance handles an event of its order key, or an earlier one is unsettled")
			}
			r.wait = true
			e.results <- r
			return
		}
		d.waits = 0
	}
	ev.Attempts++
	start := time.Now()
	err := e.call(hctx, ev)
	if err != nil && (e.base.Err() != nil || errors.Is(context.Cause(hctx), errLeaseLost)) {
		// Shutdown gave up on this call, or another consumer may have the event now;
		// whatever the call did, the event is delivered again (a step it did is found).
		if e.base.Err() == nil {
			e.log.Warn().Str("event", ev.ID).Str("kind", ev.Kind).Err(err).Msg("event handler stopped: its lease ran out while Redis did not answer; the event is delivered again")
		}
		e.st.release(d)
		e.results <- r
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	log := e.log.With().Str("event", ev.ID).Str("kind", ev.Kind).Int("attempt", ev.Attempts).Logger()
	var (
		serr  error
		delay time.Duration
		dead  = deadAtOnce(err)
	)
	if err != nil {
		now := time.Now()
		ev.failed(err, now)
		if !dead {
			delay, dead = e.opts.afterFailure(ev, now)
		}
	}
	switch {
	case err == nil:
		if serr = e.st.ack(ctx, d); serr == nil && e.opts.Hooks.Acked != nil {
			e.opts.Hooks.Acked(ev, time.Since(start))
		}
	case dead:
		if serr = e.st.bury(ctx, d, ev); serr == nil {
			log.Warn().Err(err).Bool("permanent", deadAtOnce(err)).Msg("event moved to the dead-letter list")
			if e.opts.Hooks.Dead != nil {
				e.opts.Hooks.Dead(ev, err)
			}
		}
	default:
		at := ceilMilli(time.Now().Add(delay))
		if serr = e.st.retry(ctx, d, ev, at, true); serr == nil {
			r.retryAt = at
			log.Info().Err(err).Dur("retry_in", delay).Msg("event handler failed; retry scheduled")
			if e.opts.Hooks.Retried != nil {
				e.opts.Hooks.Retried(ev, err, delay)
			}
		}
	}
	e.settled(d, serr, "event queue: could not store the outcome of a handler call; the event will be delivered again")
	e.results <- r
}

// settled ends a settle call: after a failure the event is released for another delivery
// once the store's pause is over (sooner when the engine stops).
func (e *engine) settled(d *delivery, err error, msg string) {
	if err == nil {
		e.storing.ok("event queue: the store records outcomes again")
		return
	}
	delay := e.storing.failed(fmt.Errorf("event %s: %w", d.event.ID, err), msg)
	pause(delay, e.stop, e.base.Done())
	e.st.release(d)
}

// call runs the handler with its timeout; a panic is a failed attempt, not a crash.
func (e *engine) call(parent context.Context, ev Event) (err error) {
	ctx, cancel := context.WithTimeout(parent, e.opts.HandlerTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			e.log.Error().Str("event", ev.ID).Str("stack", string(debug.Stack())).Msgf("event handler panicked: %v", p)
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return e.h(ctx, ev)
}

// ceilMilli rounds t up to a whole millisecond, the resolution both stores keep due times
// in, so an event is never released before the time its key is blocked until.
func ceilMilli(t time.Time) time.Time {
	r := t.Truncate(time.Millisecond)
	if r.Before(t) {
		r = r.Add(time.Millisecond)
	}
	return r
}
