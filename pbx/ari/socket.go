package ari

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/CyCoreSystems/ari/v6"
	"github.com/rs/zerolog"
	"golang.org/x/net/websocket"
)

// Transports of the controller's ARI REST requests (asterisk.ari.transport).
const (
	// TransportAuto sends REST requests over the event websocket when Asterisk answers
	// one there at connect (ARI REST over WebSocket), over HTTP otherwise.
	TransportAuto = "auto"
	// TransportWebsocket requires REST over the event websocket: a connection on which
	// Asterisk does not answer the probe is dropped and tried again.
	TransportWebsocket = "websocket"
	// TransportHTTP sends every REST request over HTTP, as before Asterisk had the choice.
	TransportHTTP = "http"
)

// Transports lists the values asterisk.ari.transport takes.
var Transports = []string{TransportAuto, TransportWebsocket, TransportHTTP}

// restResponseEvent is the message type Asterisk answers a RESTRequest with; the
// application's event filter must let it through, or the answers never arrive.
const restResponseEvent = "RESTResponse"

// errSocketDown: the websocket was gone before the request left; HTTP can carry it.
var errSocketDown = errors.New("ARI websocket down")

// dialApp opens the event websocket of an ARI application: Asterisk registers the
// application for as long as it stays open.
func dialApp(ctx context.Context, wsURL, app, user, pass string) (*websocket.Conn, error) {
	q := url.Values{"app": {app}, "api_key": {user + ":" + pass}}
	cfg, err := websocket.NewConfig(wsURL+"?"+q.Encode(), "http://localhost/")
	if err != nil {
		return nil, fmt.Errorf("ARI websocket %s: %w", wsURL, err)
	}
	ws, err := cfg.DialContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("ARI websocket %s: %w", wsURL, err)
	}
	return ws, nil
}

// socket is one connection of the controller's event websocket. Events go to the
// dispatcher; RESTResponse messages answer the REST requests sent on it (ARI REST over
// WebSocket, Asterisk 20.14, 21.9, 22.4 and later), matched by request id.
type socket struct {
	conn   *websocket.Conn
	events chan<- ari.Event
	quit   <-chan struct{} // the dispatcher stopped reading: events are dropped
	// raw, when set, takes every message that is no REST answer as it came, instead of
	// events (the call observer decodes the little it reads itself).
	raw func(data []byte)
	// writing is a one-slot semaphore over conn's writes; a request waiting for it gives
	// up when its deadline passes.
	writing chan struct{}
	mu      sync.Mutex
	pending map[string]chan socketAnswer
	seq     atomic.Uint64
	done    chan struct{} // closed when the reader stopped
	err     error         // why it stopped; read after done
	log     zerolog.Logger
}

type socketAnswer struct {
	status int
	body   []byte
}

// restRequestMsg is a REST request over the websocket; the query goes as name/value
// pairs (query_strings), a body as a JSON string with its content type.
type restRequestMsg struct {
	Type         string      `json:"type"`
	RequestID    string      `json:"request_id"`
	Method       string      `json:"method"`
	URI          string      `json:"uri"`
	QueryStrings []nameValue `json:"query_strings,omitempty"`
	ContentType  string      `json:"content_type,omitempty"`
	MessageBody  string      `json:"message_body,omitempty"`
}

type nameValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type restResponseMsg struct {
	Type        string `json:"type"`
	RequestID   string `json:"request_id"`
	StatusCode  int    `json:"status_code"`
	MessageBody string `json:"message_body"`
}

func newSocket(conn *websocket.Conn, events chan<- ari.Event, quit <-chan struct{}, log zerolog.Logger) *socket {
	return &socket{
		conn: conn, events: events, quit: quit, log: log,
		writing: make(chan struct{}, 1),
		pending: map[string]chan socketAnswer{},
		done:    make(chan struct{}),
	}
}

// read runs until the websocket closes; it returns why.
func (s *socket) read() error {
	defer close(s.done)
	for {
		var data []byte
		if err := websocket.Message.Receive(s.conn, &data); err != nil {
			s.err = err
			s.failPending()
			return err
		}
		if bytes.Contains(data, []byte(`"`+restResponseEvent+`"`)) {
			var r restResponseMsg
			if json.Unmarshal(data, &r) == nil && r.Type == restResponseEvent {
				s.answer(r)
				continue
			}
		}
		if s.raw != nil {
			s.raw(data)
			continue
		}
		e, err := decodeEvent(data)
		if err != nil {
			s.log.Warn().Err(err).Int("bytes", len(data)).Msg("ARI websocket: undecodable message skipped")
			continue
		}
		select {
		case s.events <- e:
		case <-s.quit:
		}
	}
}

func (s *socket) answer(r restResponseMsg) {
	s.mu.Lock()
	ch := s.pending[r.RequestID]
	delete(s.pending, r.RequestID)
	s.mu.Unlock()
	if ch != nil {
		ch <- socketAnswer{status: r.StatusCode, body: []byte(r.MessageBody)} // buffered: never blocks
	}
}

// failPending forgets the requests still waiting; they see done and give up.
func (s *socket) failPending() {
	s.mu.Lock()
	s.pending = nil
	s.mu.Unlock()
}

func (s *socket) close() { _ = s.conn.Close() }

// roundTrip sends one REST request and waits for its answer until ctx ends. It returns
// errSocketDown when the request never left (the websocket was gone), so that HTTP can
// carry it; a request that left and whose answer is lost fails.
func (s *socket) roundTrip(ctx context.Context, method, path string, query url.Values, body []byte) (int, []byte, error) {
	wait, err := s.start(ctx, method, path, query, body)
	if err != nil {
		return 0, nil, err
	}
	return wait()
}

// start sends one REST request and returns what waits for its answer (until ctx ends);
// the caller calls it. Asterisk handles the requests of one websocket one after the other,
// in the order they were sent: requests started one after the other from one goroutine
// run in that order without waiting for each answer.
func (s *socket) start(ctx context.Context, method, path string, query url.Values, body []byte) (func() (int, []byte, error), error) {
	id := strconv.FormatUint(s.seq.Add(1), 36)
	data := appendRESTRequest(make([]byte, 0, 256), id, method, path, query, body)
	ch := make(chan socketAnswer, 1)
	s.mu.Lock()
	if s.pending == nil {
		s.mu.Unlock()
		return nil, errSocketDown
	}
	s.pending[id] = ch
	s.mu.Unlock()
	forget := func() {
		s.mu.Lock()
		delete(s.pending, id)
		s.mu.Unlock()
	}

	select {
	case s.writing <- struct{}{}:
	case <-ctx.Done():
		forget()
		return nil, ctx.Err()
	case <-s.done:
		forget()
		return nil, errSocketDown
	}
	deadline, _ := ctx.Deadline() // none: zero, no write deadline
	_ = s.conn.SetWriteDeadline(deadline)
	err := websocket.Message.Send(s.conn, string(data)) // a string goes as a text frame
	<-s.writing
	if err != nil {
		// A half-written frame leaves the stream unusable: drop the connection (the
		// controller reconnects) and let HTTP carry this request.
		forget()
		s.close()
		return nil, fmt.Errorf("%w: %w", errSocketDown, err)
	}
	return func() (int, []byte, error) {
		defer forget()
		select {
		case a := <-ch:
			return a.status, a.body, nil
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		case <-s.done:
			return 0, nil, fmt.Errorf("ARI websocket closed before the answer: %w", s.err)
		}
	}, nil
}

// appendRESTRequest appends a RESTRequest message (restRequestMsg, as encoding/json writes
// it) to b; written by hand, as every REST request of a call goes through here.
func appendRESTRequest(b []byte, id, method, path string, query url.Values, body []byte) []byte {
	b = append(b, `{"type":"RESTRequest","request_id":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, method)
	b = append(b, `,"uri":`...)
	b = appendJSONString(b, path)
	first := true
	for name, vals := range query {
		for _, v := range vals {
			if first {
				b = append(b, `,"query_strings":[`...)
				first = false
			} else {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = appendJSONString(b, name)
			b = append(b, `,"value":`...)
			b = appendJSONString(b, v)
			b = append(b, '}')
		}
	}
	if !first {
		b = append(b, ']')
	}
	if body != nil {
		b = append(b, `,"content_type":"application/json","message_body":`...)
		b = appendJSONString(b, string(body))
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string: quotes, backslashes and control characters
// escaped, the rest as it is (invalid UTF-8 as U+FFFD, as encoding/json does).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
