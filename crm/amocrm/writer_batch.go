package amocrm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/crmlink/crmlink/crm"
)

// Writes of concurrent callers to one path share requests: amoCRM takes up to writeBatch
// notes, tasks, contacts, leads or Unsorted entries a POST, and its 7 requests a second,
// not the entities, are what runs out. Each path has a lane: the first write waits
// batchLinger for company, then one request carries up to writeBatch entities of every
// waiting write; while it is out (the rate limiter's wait included) the next writes
// gather for the next request.
// Every write gets its own entities' ids, or its own error: a 400 that names items fails
// the writes they belong to, and the others go out again without them (amoCRM created none
// of a refused request). Idempotency and per-client order stay with the callers: a write
// returns only once its entities exist, so a caller's next write is never ahead of it.

// A quiet lane's first request waits batchLinger for company, and again while company keeps
// arriving (a burst of outcomes), up to batchLingerMax or a full round.
const (
	batchLinger    = 5 * time.Millisecond
	batchLingerMax = 50 * time.Millisecond
)

// batchWrite is one caller's write waiting in a lane.
type batchWrite struct {
	ctx   context.Context
	key   string // the answer's _embedded key
	items []json.RawMessage
	sent  []string // request_id per item, "" for none
	done  chan struct{}
	ids   []int64
	err   error

	// skip, when set, says which refused items are no failure: they are left out and
	// the rest go again (Unsorted entries already waiting).
	skip func(ValidationItem) bool
	// answers are amoCRM's objects for the items, in their order (Unsorted entries,
	// whose answer is more than an id).
	answers []json.RawMessage
}

// gatherer joins concurrent requests of one kind into rounds per key (a lane): the first
// request of a quiet lane waits batchLinger for company, then flush gets up to limit units
// of the waiting requests; while it runs, the next requests gather for the next round.
type gatherer[T any] struct {
	limit int
	size  func(T) int
	flush func(key string, batch []T)

	mu    sync.Mutex
	lanes map[string]*lane[T]
}

type lane[T any] struct {
	pending []T
	busy    bool
}

// add queues r on the key's lane; flush will be called with it.
func (g *gatherer[T]) add(key string, r T) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.lanes == nil {
		g.lanes = map[string]*lane[T]{}
	}
	l := g.lanes[key]
	if l == nil {
		l = &lane[T]{}
		g.lanes[key] = l
	}
	l.pending = append(l.pending, r)
	if !l.busy {
		l.busy = true
		go g.run(key, l)
	}
}

// run flushes the lane's requests until none waits.
func (g *gatherer[T]) run(key string, l *lane[T]) {
	g.linger(l)
	for {
		g.mu.Lock()
		var take []T
		n := 0
		for len(l.pending) > 0 && (len(take) == 0 || n+g.size(l.pending[0]) <= g.limit) {
			n += g.size(l.pending[0])
			take = append(take, l.pending[0])
			l.pending = l.pending[1:]
		}
		if len(take) == 0 {
			l.busy = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		g.flush(key, take)
	}
}

// linger waits while the lane's first round is still filling.
func (g *gatherer[T]) linger(l *lane[T]) {
	for waited := time.Duration(0); waited < batchLingerMax; waited += batchLinger {
		g.mu.Lock()
		before := g.units(l)
		g.mu.Unlock()
		time.Sleep(batchLinger)
		g.mu.Lock()
		after := g.units(l)
		g.mu.Unlock()
		if after == before || after >= g.limit {
			return
		}
	}
}

// units is how much of a round the lane's waiting requests fill; g.mu is held.
func (g *gatherer[T]) units(l *lane[T]) int {
	n := 0
	for _, r := range l.pending {
		n += g.size(r)
	}
	return n
}

// collector joins the writes of one Client, and its reads of open tasks (the missed-call
// check before every call-back task).
type collector struct {
	c      *Client
	writes gatherer[*batchWrite]
	tasks  gatherer[*taskRead]
}

func newCollector(c *Client) *collector {
	col := &collector{c: c}
	col.writes = gatherer[*batchWrite]{limit: writeBatch, size: func(w *batchWrite) int { return len(w.items) }, flush: col.send}
	col.tasks = gatherer[*taskRead]{limit: writeBatch, size: func(*taskRead) int { return 1 }, flush: col.readTasks}
	return col
}

// taskRead is one caller's question for an entity's open tasks.
type taskRead struct {
	ctx   context.Context
	id    int64
	done  chan struct{}
	tasks []crm.Task
	err   error
}

// openTasks lists the open tasks of one entity (entity is amoCRM's path name), asked in
// one request with other callers' entities of the type.
func (col *collector) openTasks(ctx context.Context, entity string, id int64) ([]crm.Task, error) {
	r := &taskRead{ctx: ctx, id: id, done: make(chan struct{})}
	col.tasks.add(entity, r)
	select {
	case <-r.done:
		return r.tasks, r.err
	case <-ctx.Done():
		return nil, apiError(http.MethodGet, tasksPath, ctx.Err())
	}
}

// readTasks asks for the open tasks of every entity in rs and hands each its own.
func (col *collector) readTasks(entity string, rs []*taskRead) {
	ctxs := make([]context.Context, len(rs))
	var ids []string
	for i, r := range rs {
		ctxs[i] = r.ctx
		ids = append(ids, strconv.FormatInt(r.id, 10))
	}
	slices.Sort(ids)
	q := url.Values{
		"filter[entity_type]":  {entity},
		"filter[entity_id][]":  slices.Compact(ids),
		"filter[is_completed]": {"0"},
		"limit":                {"250"},
	}
	found, err := listAll[taskDTO](batchContext(ctxs), col.c, tasksPath, q, "tasks")
	for _, r := range rs {
		r.err = err
		for _, d := range found {
			if !d.IsCompleted && d.EntityID != nil && *d.EntityID == r.id {
				r.tasks = append(r.tasks, d.task())
			}
		}
		close(r.done)
	}
}

// post writes items (at most writeBatch) to path together with other callers' and returns
// the ids amoCRM gave them (from _embedded[key]), in the order of items.
func (col *collector) post(ctx context.Context, path, key string, items []json.RawMessage, sent []string) ([]int64, error) {
	return col.postSkipping(ctx, path, key, items, sent, nil)
}

// postSkipping is post where amoCRM refusing an item only for reasons skip accepts leaves
// the item out (no id for it) instead of failing the write.
func (col *collector) postSkipping(ctx context.Context, path, key string, items []json.RawMessage, sent []string, skip func(ValidationItem) bool) ([]int64, error) {
	w, err := col.wait(ctx, path, &batchWrite{ctx: ctx, key: key, items: items, sent: sent, skip: skip})
	if err != nil {
		return nil, err
	}
	return w.ids, nil
}

// postAnswers is post for writes whose answers are more than ids: amoCRM's object for each
// item, in the order of items.
func (col *collector) postAnswers(ctx context.Context, path, key string, items []json.RawMessage, sent []string) ([]json.RawMessage, error) {
	w, err := col.wait(ctx, path, &batchWrite{ctx: ctx, key: key, items: items, sent: sent})
	if err != nil {
		return nil, err
	}
	return w.answers, nil
}

// wait queues w on the path's lane and waits for its answer.
func (col *collector) wait(ctx context.Context, path string, w *batchWrite) (*batchWrite, error) {
	w.done = make(chan struct{})
	col.writes.add(path, w)
	select {
	case <-w.done:
		return w, w.err
	case <-ctx.Done():
		// The entities may still be written: the caller's retry looks for them before
		// writing again (events.Once), as after any lost answer.
		return nil, apiError(http.MethodPost, path, ctx.Err())
	}
}

// send writes the batch, again without the writes a 400 named, until it is written or
// fails as a whole.
func (col *collector) send(path string, ws []*batchWrite) {
	key := ws[0].key
	for len(ws) > 0 {
		var items []json.RawMessage
		var sent []string
		for _, w := range ws {
			items = append(items, w.items...)
			sent = append(sent, w.sent...)
		}
		ctxs := make([]context.Context, len(ws))
		for i, w := range ws {
			ctxs[i] = w.ctx
		}
		ids, answers, err := col.c.postAnswered(batchContext(ctxs), path, key, items, sent)
		var ve *ValidationError
		if err != nil && errors.As(err, &ve) {
			if rest, left := col.skipped(ws, ve); left > 0 {
				ws = rest
				continue
			}
			if rest := refused(path, ws, ve); len(rest) < len(ws) {
				ws = rest
				continue
			}
		}
		at := 0
		for _, w := range ws {
			if err != nil {
				w.err = err
			} else {
				w.ids, w.answers = ids[at:at+len(w.items)], answers[at:at+len(w.items)]
			}
			at += len(w.items)
			close(w.done)
		}
		return
	}
}

// batchContext carries the first request's values (its priority) and the latest deadline of
// the batch, but no cancellation: one caller giving up must not fail the others' writes.
func batchContext(ctxs []context.Context) context.Context {
	ctx := context.WithoutCancel(ctxs[0])
	var last time.Time
	for _, c := range ctxs {
		dl, ok := c.Deadline()
		if !ok {
			return ctx
		}
		if dl.After(last) {
			last = dl
		}
	}
	ctx, cancel := context.WithDeadline(ctx, last)
	time.AfterFunc(time.Until(last), cancel)
	return ctx
}

// skipped leaves out of their writes the items ve names that their write's skip accepts,
// and returns how many it left out and the writes that still have items (a write left
// without any is done, with no ids).
func (col *collector) skipped(ws []*batchWrite, ve *ValidationError) ([]*batchWrite, int) {
	type at struct{ w, i int }
	where := map[string]at{}
	n := 0
	for wi, w := range ws {
		for i, id := range w.sent {
			if id == "" {
				id = strconv.Itoa(n + i)
			}
			where[id] = at{wi, i}
		}
		n += len(w.items)
	}
	drop := map[at]bool{}
	for _, it := range ve.Items {
		a, ok := where[it.RequestID]
		if ok && ws[a.w].skip != nil && ws[a.w].skip(it) {
			drop[a] = true
		}
	}
	if len(drop) == 0 {
		return ws, 0
	}
	col.c.log.Debug().Int("skipped", len(drop)).Msg("amocrm refused items a write does without (Unsorted entries already waiting); the rest go again")
	var rest []*batchWrite
	for wi, w := range ws {
		var items []json.RawMessage
		var sent []string
		for i := range w.items {
			if !drop[at{wi, i}] {
				items, sent = append(items, w.items[i]), append(sent, w.sent[i])
			}
		}
		w.items, w.sent = items, sent
		if len(items) == 0 {
			w.ids = []int64{}
			close(w.done)
			continue
		}
		rest = append(rest, w)
	}
	return rest, len(drop)
}

// refused fails the writes whose items ve names, each with its own items (named as the
// write sent them, so the error reads as if the write had gone alone), and returns the rest.
func refused(path string, ws []*batchWrite, ve *ValidationError) []*batchWrite {
	owner := map[string]int{} // request id as amoCRM names it -> write
	local := map[string]string{}
	at := 0
	for i, w := range ws {
		for j, id := range w.sent {
			name := id
			if name == "" {
				name, id = strconv.Itoa(at+j), strconv.Itoa(j)
			}
			owner[name], local[name] = i, id
		}
		at += len(w.items)
	}
	mine := make([][]ValidationItem, len(ws))
	for _, it := range ve.Items {
		i, ok := owner[it.RequestID]
		if !ok {
			return ws // an item we cannot place: the whole batch fails
		}
		it.RequestID = local[it.RequestID]
		mine[i] = append(mine[i], it)
	}
	var rest []*batchWrite
	for i, w := range ws {
		if len(mine[i]) == 0 {
			rest = append(rest, w)
			continue
		}
		w.err = apiError(http.MethodPost, path, &ValidationError{Status: ve.Status, Title: ve.Title, Detail: ve.Detail, Items: mine[i]})
		close(w.done)
	}
	return rest
}

// postItems sends one write request of the items (a slice, len(sent) long) and returns the
// created ids in their order.
func (c *Client) postItems(ctx context.Context, path, key string, items any, sent []string) ([]int64, error) {
	ids, _, err := c.postAnswered(ctx, path, key, items, sent)
	return ids, err
}

// postAnswered is postItems that also returns amoCRM's object for each item, in their order.
func (c *Client) postAnswered(ctx context.Context, path, key string, items any, sent []string) ([]int64, []json.RawMessage, error) {
	r, err := c.write(ctx, http.MethodPost, path, items)
	if err != nil {
		return nil, nil, err
	}
	var l halList
	var raws []json.RawMessage
	if err := json.Unmarshal(r.body, &l); err != nil {
		return nil, nil, apiError(http.MethodPost, path, fmt.Errorf("decode response: %w", err))
	}
	if raw, ok := l.Embedded[key]; ok {
		if err := json.Unmarshal(raw, &raws); err != nil {
			return nil, nil, apiError(http.MethodPost, path, fmt.Errorf("decode response: %w", err))
		}
	}
	got := make([]createdRef, len(raws))
	for i, raw := range raws {
		if err := json.Unmarshal(raw, &got[i]); err != nil {
			return nil, nil, apiError(http.MethodPost, path, fmt.Errorf("decode response: %w", err))
		}
	}
	order, err := createdOrder(got, sent)
	if err != nil {
		return nil, nil, apiError(http.MethodPost, path, err)
	}
	ids, answers := make([]int64, len(order)), make([]json.RawMessage, len(order))
	for i, g := range order {
		ids[i], answers[i] = got[g].ID, raws[g]
	}
	return ids, answers, nil
}

// encodeItems turns a write's entities into the JSON objects a lane joins.
func encodeItems[T any](method, path string, items []T) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, len(items))
	for i, it := range items {
		b, err := json.Marshal(it)
		if err != nil {
			return nil, apiError(method, path, fmt.Errorf("encode request: %w", err))
		}
		out[i] = b
	}
	return out, nil
}
