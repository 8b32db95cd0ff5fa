package amocrm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Writes of concurrent callers to one path share requests: amoCRM takes up to writeBatch
// notes, tasks, contacts or leads a POST, and its 7 requests a second, not the entities,
// are what runs out. Each path has a lane: the first write waits batchLinger for company,
// then one request carries up to writeBatch entities of every waiting write; while it is
// out (the rate limiter's wait included) the next writes gather for the next request.
// Every write gets its own entities' ids, or its own error: a 400 that names items fails
// the writes they belong to, and the others go out again without them (amoCRM created none
// of a refused request). Idempotency and per-client order stay with the callers: a write
// returns only once its entities exist, so a caller's next write is never ahead of it.

// batchLinger is how long the first write of a quiet lane waits for others.
const batchLinger = 5 * time.Millisecond

// batchWrite is one caller's write waiting in a lane.
type batchWrite struct {
	ctx   context.Context
	items []json.RawMessage
	sent  []string // request_id per item, "" for none
	done  chan struct{}
	ids   []int64
	err   error
}

type lane struct {
	pending []*batchWrite
	busy    bool
}

// collector holds the lanes of one Client.
type collector struct {
	c     *Client
	mu    sync.Mutex
	lanes map[string]*lane // by path
}

func newCollector(c *Client) *collector { return &collector{c: c, lanes: map[string]*lane{}} }

// post writes items (at most writeBatch) to path together with other callers' and returns
// the ids amoCRM gave them (from _embedded[key]), in the order of items.
func (col *collector) post(ctx context.Context, path, key string, items []json.RawMessage, sent []string) ([]int64, error) {
	w := &batchWrite{ctx: ctx, items: items, sent: sent, done: make(chan struct{})}
	col.mu.Lock()
	l := col.lanes[path]
	if l == nil {
		l = &lane{}
		col.lanes[path] = l
	}
	l.pending = append(l.pending, w)
	if !l.busy {
		l.busy = true
		go col.run(path, key, l)
	}
	col.mu.Unlock()
	select {
	case <-w.done:
		return w.ids, w.err
	case <-ctx.Done():
		// The entities may still be written: the caller's retry finds them (its own
		// idempotency keys), as after any lost answer.
		return nil, apiError(http.MethodPost, path, ctx.Err())
	}
}

// run sends the lane's writes until none waits.
func (col *collector) run(path, key string, l *lane) {
	time.Sleep(batchLinger)
	for {
		col.mu.Lock()
		var take []*batchWrite
		n := 0
		for len(l.pending) > 0 && n+len(l.pending[0].items) <= writeBatch {
			n += len(l.pending[0].items)
			take = append(take, l.pending[0])
			l.pending = l.pending[1:]
		}
		if len(take) == 0 {
			l.busy = false
			col.mu.Unlock()
			return
		}
		col.mu.Unlock()
		col.send(path, key, take)
	}
}

// send writes the batch, again without the writes a 400 named, until it is written or
// fails as a whole.
func (col *collector) send(path, key string, ws []*batchWrite) {
	for len(ws) > 0 {
		var items []json.RawMessage
		var sent []string
		for _, w := range ws {
			items = append(items, w.items...)
			sent = append(sent, w.sent...)
		}
		ids, err := col.c.postItems(batchContext(ws), path, key, items, sent)
		var ve *ValidationError
		if err != nil && errors.As(err, &ve) {
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
				w.ids = ids[at : at+len(w.items)]
			}
			at += len(w.items)
			close(w.done)
		}
		return
	}
}

// batchContext carries the first write's values (its priority) and the latest deadline of
// the batch, but no cancellation: one caller giving up must not fail the others' writes.
func batchContext(ws []*batchWrite) context.Context {
	ctx := context.WithoutCancel(ws[0].ctx)
	var last time.Time
	for _, w := range ws {
		dl, ok := w.ctx.Deadline()
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
	r, err := c.write(ctx, http.MethodPost, path, items)
	if err != nil {
		return nil, err
	}
	var l halList
	var got []createdRef
	if err := json.Unmarshal(r.body, &l); err != nil {
		return nil, apiError(http.MethodPost, path, fmt.Errorf("decode response: %w", err))
	}
	if raw, ok := l.Embedded[key]; ok {
		if err := json.Unmarshal(raw, &got); err != nil {
			return nil, apiError(http.MethodPost, path, fmt.Errorf("decode response: %w", err))
		}
	}
	ids, err := matchCreated(got, sent)
	if err != nil {
		return nil, apiError(http.MethodPost, path, err)
	}
	return ids, nil
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
