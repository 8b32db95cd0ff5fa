package ari

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/CyCoreSystems/ari/v6"
)

// DefaultMaxConns caps the HTTP connections the controller opens to ARI. Asterisk serves at
// most http.conf session_limit connections (100 by default) and drops requests past it
// (the client sees EOF); 48 leaves room for the websocket, other ARI users and the AMI.
const DefaultMaxConns = 48

// restClient makes every ARI REST request of the controller, each with a context and a
// deadline (the ARI library's REST calls take neither, and an abandoned one keeps running).
// A request goes over the event websocket when the controller found at connect that
// Asterisk takes REST requests there (useSocket), else over one HTTP transport whose
// connections to Asterisk are capped; either way it gives up at its deadline.
type restClient struct {
	base    string
	auth    string // the Authorization header, built once
	timeout time.Duration
	http    *http.Client
	socket  atomic.Pointer[socket] // nil: HTTP
}

func newRESTClient(base, user, pass string, timeout time.Duration, maxConns int) *restClient {
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	tr := &http.Transport{
		Proxy:       http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		// Requests past the cap wait for a free connection (within their deadline) rather
		// than open one Asterisk would refuse.
		MaxConnsPerHost:     maxConns,
		MaxIdleConns:        maxConns,
		MaxIdleConnsPerHost: maxConns,
		// Asterisk closes a keep-alive connection idle for session_keep_alive (15 s by
		// default); dropping ours first keeps a request from racing that close and
		// failing with EOF (POSTs are not retried).
		IdleConnTimeout:       10 * time.Second,
		ResponseHeaderTimeout: timeout,
	}
	return &restClient{
		base:    strings.TrimSuffix(base, "/"),
		auth:    "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass)),
		timeout: timeout,
		http:    &http.Client{Transport: tr},
	}
}

// errNotFound is a 404 from ARI: the channel, bridge or application does not exist.
var errNotFound = errors.New("ARI: not found")

// errNotInStasis is a 409 from ARI on a channel operation: the channel is not in the
// application any more (a continue that went through before its answer was lost).
var errNotInStasis = errors.New("ARI: channel not in the application")

// requestError is a non-2xx answer from ARI.
type requestError struct {
	method, path string
	status       int
	message      string
}

func (e *requestError) Error() string {
	if e.message != "" {
		return fmt.Sprintf("ARI %s %s: status %d: %s", e.method, e.path, e.status, e.message)
	}
	return fmt.Sprintf("ARI %s %s: status %d", e.method, e.path, e.status)
}

// Is makes a 404 match errNotFound and a 409 errNotInStasis.
func (e *requestError) Is(target error) bool {
	return (target == errNotFound && e.status == http.StatusNotFound) ||
		(target == errNotInStasis && e.status == http.StatusConflict)
}

// do sends one request (parameters in the query string, body as JSON when not nil) under
// the REST timeout and decodes a JSON answer into out when out is not nil.
func (r *restClient) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	return r.begin(ctx, method, path, query, body, out)()
}

// begin sends one request as do does and returns what waits for its outcome; the caller
// calls it. Over the websocket the request has left when begin returns, and requests begun
// one after the other run in that order in Asterisk without waiting for each answer: a
// call's requests take one round trip. Over HTTP begin waits for the answer itself.
func (r *restClient) begin(ctx context.Context, method, path string, query url.Values, body, out any) func() error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	var data []byte
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			cancel()
			err = fmt.Errorf("ARI %s %s: encode: %w", method, path, err)
			return func() error { return err }
		}
	}
	if s := r.socket.Load(); s != nil {
		wait, err := s.start(ctx, method, strings.TrimPrefix(path, "/"), query, data)
		switch {
		case err == nil:
			return func() error {
				defer cancel()
				code, answer, err := wait()
				return answerOf(method, path, code, answer, err, out)
			}
		case !errors.Is(err, errSocketDown):
			cancel()
			return func() error { return answerOf(method, path, 0, nil, err, out) }
		}
		// The websocket went down before the request left: HTTP carries it.
	}
	code, answer, err := r.httpRoundTrip(ctx, method, path, query, data)
	cancel()
	err = answerOf(method, path, code, answer, err, out)
	return func() error { return err }
}

// answerOf turns ARI's answer into the request's outcome: a JSON answer decoded into out
// when out is not nil, a refusal into a requestError.
func answerOf(method, path string, code int, answer []byte, err error, out any) error {
	if err != nil {
		return fmt.Errorf("ARI %s %s: %w", method, path, err)
	}
	if code < 200 || code > 299 {
		// Asterisk words most refusals as {"message": ...} and some, among them an
		// originate it cannot place, as {"error": ...}.
		var msg struct {
			Message string `json:"message"`
			Error   string `json:"error"`
		}
		_ = json.Unmarshal(answer, &msg)
		if msg.Message == "" {
			msg.Message = msg.Error
		}
		return &requestError{method: method, path: path, status: code, message: msg.Message}
	}
	if out != nil {
		if err := json.Unmarshal(answer, out); err != nil {
			return fmt.Errorf("ARI %s %s: decode: %w", method, path, err)
		}
	}
	return nil
}

// httpRoundTrip sends one request over HTTP and reads the whole answer.
func (r *restClient) httpRoundTrip(ctx context.Context, method, path string, query url.Values, body []byte) (int, []byte, error) {
	if r.base == "" {
		return 0, nil, errNoHTTP
	}
	u := r.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", r.auth) // what SetBasicAuth sends, without encoding it per request
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	// Read to the end so the connection is reused.
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, data, nil
}

// useSocket sends the requests from now on over this websocket; nil: over HTTP.
func (r *restClient) useSocket(s *socket) { r.socket.Store(s) }

// transport names how requests go now: websocket or http.
func (r *restClient) transport() string {
	if r.socket.Load() != nil {
		return TransportWebsocket
	}
	return TransportHTTP
}

func (r *restClient) get(ctx context.Context, path string, out any) error {
	return r.do(ctx, http.MethodGet, path, nil, nil, out)
}

func channelPath(id string) string { return "/channels/" + url.PathEscape(id) }

func bridgePath(id string) string { return "/bridges/" + url.PathEscape(id) }

// endpointState is "online", "offline" or "unknown".
func (r *restClient) endpointState(ctx context.Context, tech, resource string) (string, error) {
	var ep struct {
		State string `json:"state"`
	}
	if err := r.get(ctx, "/endpoints/"+url.PathEscape(tech)+"/"+url.PathEscape(resource), &ep); err != nil {
		return "", err
	}
	return ep.State, nil
}

// endpointStates lists every endpoint's state by "TECH/resource".
func (r *restClient) endpointStates(ctx context.Context) (map[string]string, error) {
	var eps []struct {
		Technology string `json:"technology"`
		Resource   string `json:"resource"`
		State      string `json:"state"`
	}
	if err := r.get(ctx, "/endpoints", &eps); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(eps))
	for _, ep := range eps {
		out[ep.Technology+"/"+ep.Resource] = ep.State
	}
	return out, nil
}

// appState is what the controller checks of its application: whether Asterisk has it, and
// which event types its filter lets through.
type appState struct {
	registered bool
	allowed    []string
}

func (r *restClient) application(ctx context.Context, app string) (appState, error) {
	var a struct {
		Name    string `json:"name"`
		Allowed []struct {
			Type string `json:"type"`
		} `json:"events_allowed"`
	}
	err := r.get(ctx, "/applications/"+url.PathEscape(app), &a)
	if errors.Is(err, errNotFound) {
		return appState{}, nil
	}
	if err != nil {
		return appState{}, err
	}
	st := appState{registered: true}
	for _, t := range a.Allowed {
		st.allowed = append(st.allowed, t.Type)
	}
	return st, nil
}

// channels lists every channel in Asterisk.
func (r *restClient) channels(ctx context.Context) ([]ari.ChannelData, error) {
	var all []ari.ChannelData
	if err := r.get(ctx, "/channels", &all); err != nil {
		return nil, err
	}
	return all, nil
}

// inApp keeps the channels sitting in Stasis(app) as the dialplan put them there.
func inApp(all []ari.ChannelData, app string) []ari.ChannelData {
	var out []ari.ChannelData
	for _, ch := range all {
		if ch.Dialplan == nil || ch.Dialplan.AppName != "Stasis" {
			continue
		}
		name, _, _ := strings.Cut(ch.Dialplan.AppData, ",")
		if strings.TrimSpace(name) == app {
			out = append(out, ch)
		}
	}
	return out
}

// bridgeInfo is what the reconciler needs of a bridge.
type bridgeInfo struct {
	ID       string   `json:"id"`
	Channels []string `json:"channels"`
}

func (r *restClient) bridges(ctx context.Context) ([]bridgeInfo, error) {
	var out []bridgeInfo
	err := r.get(ctx, "/bridges", &out)
	return out, err
}

// filterEvents asks Asterisk to send the application only these event types (ARI's
// PUT /applications/{app}/eventFilter): less to send, decode and drop under load.
func (r *restClient) filterEvents(ctx context.Context, app string, types []string) error {
	type typ struct {
		Type string `json:"type"`
	}
	body := struct {
		Allowed []typ `json:"allowed"`
	}{}
	for _, t := range types {
		body.Allowed = append(body.Allowed, typ{t})
	}
	return r.do(ctx, http.MethodPut, "/applications/"+url.PathEscape(app)+"/eventFilter", nil, body, nil)
}

// subscribe adds an event source ("channel:<id>") to the application.
func (r *restClient) subscribe(ctx context.Context, app, source string) error {
	return r.beginSubscribe(ctx, app, source)()
}

// beginSubscribe is subscribe begun (begin).
func (r *restClient) beginSubscribe(ctx context.Context, app, source string) func() error {
	return r.begin(ctx, http.MethodPost, "/applications/"+url.PathEscape(app)+"/subscription",
		url.Values{"eventSource": {source}}, nil, nil)
}

// originateRequest is what the controller originates towards a manager phone.
type originateRequest struct {
	Endpoint, App, AppArgs, CallerID, ChannelID, Originator string
	Timeout                                                 time.Duration
}

func (r *restClient) originate(ctx context.Context, o originateRequest) error {
	q := url.Values{
		"endpoint":  {o.Endpoint},
		"app":       {o.App},
		"appArgs":   {o.AppArgs},
		"channelId": {o.ChannelID},
		"timeout":   {strconv.Itoa(int(o.Timeout / time.Second))},
	}
	if o.CallerID != "" {
		q.Set("callerId", o.CallerID)
	}
	if o.Originator != "" {
		q.Set("originator", o.Originator)
	}
	return r.do(ctx, http.MethodPost, "/channels", q, nil, nil)
}

// ring indicates ringing to the caller (180).
func (r *restClient) ring(ctx context.Context, channel string) error {
	return r.do(ctx, http.MethodPost, channelPath(channel)+"/ring", nil, nil, nil)
}

func (r *restClient) answer(ctx context.Context, channel string) error {
	return r.do(ctx, http.MethodPost, channelPath(channel)+"/answer", nil, nil, nil)
}

func (r *restClient) hangup(ctx context.Context, channel, reason string) error {
	return r.do(ctx, http.MethodDelete, channelPath(channel), url.Values{"reason": {reason}}, nil, nil)
}

// continueIn sends the channel on to the dialplan; it leaves Stasis.
func (r *restClient) continueIn(ctx context.Context, channel, context, extension string, priority int) error {
	return r.do(ctx, http.MethodPost, channelPath(channel)+"/continue", url.Values{
		"context": {context}, "extension": {extension}, "priority": {strconv.Itoa(priority)},
	}, nil, nil)
}

// continueAtLabel sends the channel on to the dialplan at a labelled priority: Asterisk
// answers 404 ("Requested label can not be found") when the context, the extension or the
// label does not exist, where a continue by priority would send the caller nowhere.
func (r *restClient) continueAtLabel(ctx context.Context, channel, context, extension, label string) error {
	return r.beginContinueAtLabel(ctx, channel, context, extension, label)()
}

// beginContinueAtLabel is continueAtLabel begun (begin).
func (r *restClient) beginContinueAtLabel(ctx context.Context, channel, context, extension, label string) func() error {
	return r.begin(ctx, http.MethodPost, channelPath(channel)+"/continue", url.Values{
		"context": {context}, "extension": {extension}, "label": {label},
	}, nil, nil)
}

func (r *restClient) setVariable(ctx context.Context, channel, name, value string) error {
	return r.beginSetVariable(ctx, channel, name, value)()
}

func (r *restClient) beginSetVariable(ctx context.Context, channel, name, value string) func() error {
	return r.begin(ctx, http.MethodPost, channelPath(channel)+"/variable", url.Values{"variable": {name}, "value": {value}}, nil, nil)
}

// setVariables sets several channel variables. When every value is plain it is one request:
// the dialplan function ARRAY(a,b,c) assigns a comma-separated list to its variables in one
// write (and, like Set(), writes functions such as CDR(userfield)). A value ARRAY would
// split or unquote is set on its own.
func (r *restClient) setVariables(ctx context.Context, channel string, vars []channelVar) error {
	return r.beginSetVariables(ctx, channel, vars)()
}

// beginSetVariables is setVariables begun (begin).
func (r *restClient) beginSetVariables(ctx context.Context, channel string, vars []channelVar) func() error {
	var names, values []string
	type begun struct {
		what string
		wait func() error
	}
	var all []begun
	for _, v := range vars {
		if !plainValue(v.value) || strings.ContainsAny(v.name, ",|") {
			all = append(all, begun{v.name, r.beginSetVariable(ctx, channel, v.name, v.value)})
			continue
		}
		names, values = append(names, v.name), append(values, v.value)
	}
	switch len(names) {
	case 0:
	case 1:
		all = append(all, begun{names[0], r.beginSetVariable(ctx, channel, names[0], values[0])})
	default:
		all = append(all, begun{strings.Join(names, ","), r.beginSetVariable(ctx, channel, "ARRAY("+strings.Join(names, ",")+")", strings.Join(values, ","))})
	}
	return func() error {
		var errs []error
		for _, b := range all {
			if err := b.wait(); err != nil {
				errs = append(errs, fmt.Errorf("set %s: %w", b.what, err))
			}
		}
		return errors.Join(errs...)
	}
}

// channelVar is one channel variable (or dialplan function) and its value.
type channelVar struct{ name, value string }

// plainValue reports whether ARRAY() passes a value through unchanged: no separators,
// quotes, brackets, escapes or spaces.
func plainValue(s string) bool {
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.ContainsRune("_-.:@+/#*=", c):
		default:
			return false
		}
	}
	return true
}

// createBridge creates a mixing bridge with this id (and name).
func (r *restClient) createBridge(ctx context.Context, id string) error {
	return r.do(ctx, http.MethodPost, bridgePath(id), url.Values{"type": {"mixing"}, "name": {id}}, nil, nil)
}

// addChannels puts channels into a bridge in one request (ARI takes a comma-separated list).
func (r *restClient) addChannels(ctx context.Context, bridge string, channels ...string) error {
	return r.do(ctx, http.MethodPost, bridgePath(bridge)+"/addChannel", url.Values{"channel": {strings.Join(channels, ",")}}, nil, nil)
}

func (r *restClient) deleteBridge(ctx context.Context, id string) error {
	return r.do(ctx, http.MethodDelete, bridgePath(id), nil, nil, nil)
}

// closeIdle releases the idle connections to Asterisk.
func (r *restClient) closeIdle() { r.http.CloseIdleConnections() }
