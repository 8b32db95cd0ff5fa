package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
)

// ariCensus is a reverse proxy between crmlink and ARI that counts crmlink's REST requests
// by method and route (over HTTP, and over the event websocket as "WS <method> <route>"),
// and the events Asterisk pushes on the websocket by type: the
// per-call round trips and events of the Stasis controller, measured rather than read off
// the code. Only the census run goes through it; the measured runs talk to ARI directly.
type ariCensus struct {
	srv    *http.Server
	ln     net.Listener
	target string // host:port of ARI
	mu     sync.Mutex
	counts map[string]int
	events map[string]int
}

func startARICensus(target string) (*ariCensus, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c := &ariCensus{ln: ln, target: u.Host, counts: map[string]int{}, events: map[string]int{}}
	proxy := httputil.NewSingleHostReverseProxy(u)
	c.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.counts[r.Method+" "+ariRoute(r.URL.Path)]++
		c.mu.Unlock()
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			c.websocket(w, r)
			return
		}
		proxy.ServeHTTP(w, r)
	})}
	go func() {
		if err := c.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err
		}
	}()
	return c, nil
}

// URLs are what crmlink is given instead of the rig's ARI addresses.
func (c *ariCensus) URLs() (rest, ws string) {
	a := c.ln.Addr().String()
	return "http://" + a + "/ari", "ws://" + a + "/ari/events"
}

func (c *ariCensus) reset() {
	c.mu.Lock()
	clear(c.counts)
	clear(c.events)
	c.mu.Unlock()
}

// snapshot returns the REST requests and the websocket events counted since the reset.
func (c *ariCensus) snapshot() (requests, events map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	requests, events = make(map[string]int, len(c.counts)), make(map[string]int, len(c.events))
	for k, v := range c.counts {
		requests[k] = v
	}
	for k, v := range c.events {
		events[k] = v
	}
	return requests, events
}

// websocket relays the event websocket byte for byte, reading the frames Asterisk sends
// (unmasked, RFC 6455) to count each event by its type.
func (c *ariCensus) websocket(w http.ResponseWriter, r *http.Request) {
	backend, err := net.Dial("tcp", c.target)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer backend.Close()
	if err := r.Write(backend); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "no hijacking", http.StatusInternalServerError)
		return
	}
	client, brw, err := hj.Hijack()
	if err != nil {
		return
	}
	defer client.Close()
	go func() {
		defer backend.Close()
		// crmlink's frames (masked), relayed as read; its REST requests are counted.
		for {
			frame, opcode, payload, err := readFrame(brw.Reader)
			if err != nil {
				return
			}
			if opcode == 1 {
				var req struct {
					Type   string `json:"type"`
					Method string `json:"method"`
					URI    string `json:"uri"`
				}
				if json.Unmarshal(payload, &req) == nil && req.Type == "RESTRequest" {
					path, _, _ := strings.Cut(req.URI, "?")
					c.mu.Lock()
					c.counts["WS "+req.Method+" "+ariRoute("/ari/"+strings.TrimPrefix(path, "/"))]++
					c.mu.Unlock()
				}
			}
			if _, err := backend.Write(frame); err != nil {
				return
			}
		}
	}()
	br := bufio.NewReader(backend)
	// The handshake answer, up to its blank line.
	for {
		line, err := br.ReadString('\n')
		if _, werr := io.WriteString(client, line); err != nil || werr != nil {
			return
		}
		if line == "\r\n" {
			break
		}
	}
	for {
		frame, opcode, payload, err := readFrame(br)
		if err != nil {
			return
		}
		if opcode == 1 {
			var e struct {
				Type string `json:"type"`
			}
			if json.Unmarshal(payload, &e) == nil && e.Type != "" {
				c.mu.Lock()
				c.events[e.Type]++
				c.mu.Unlock()
			}
		}
		if _, err := client.Write(frame); err != nil {
			return
		}
	}
}

// readFrame reads one websocket frame; frame is its bytes as read, payload its data.
func readFrame(br *bufio.Reader) (frame []byte, opcode byte, payload []byte, err error) {
	var h [2]byte
	if _, err = io.ReadFull(br, h[:]); err != nil {
		return
	}
	frame = append(frame, h[:]...)
	opcode = h[0] & 0x0f
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err = io.ReadFull(br, ext[:]); err != nil {
			return
		}
		frame = append(frame, ext[:]...)
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err = io.ReadFull(br, ext[:]); err != nil {
			return
		}
		frame = append(frame, ext[:]...)
		n = binary.BigEndian.Uint64(ext[:])
	}
	var mask []byte
	if h[1]&0x80 != 0 {
		mask = make([]byte, 4)
		if _, err = io.ReadFull(br, mask); err != nil {
			return
		}
		frame = append(frame, mask...)
	}
	if n > 16<<20 {
		return nil, 0, nil, errors.New("websocket frame over 16 MB")
	}
	payload = make([]byte, n)
	if _, err = io.ReadFull(br, payload); err != nil {
		return
	}
	frame = append(frame, payload...)
	if mask != nil {
		payload = append([]byte(nil), payload...)
		for i := range payload {
			payload[i] ^= mask[i%4]
		}
	}
	return frame, opcode, payload, nil
}

func (c *ariCensus) close() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = c.srv.Shutdown(ctx)
	_ = c.srv.Close()
}

// ariRoute replaces the ids in an ARI path with placeholders: /ari/channels/{id}/answer.
func ariRoute(path string) string {
	seg := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for i := 1; i < len(seg); i++ {
		switch seg[i-1] {
		case "channels", "bridges", "playbacks", "recordings":
			if i == 2 { // /ari/channels/{id}/...
				seg[i] = "{id}"
			}
		}
	}
	return "/" + strings.Join(seg, "/")
}

// backgroundRoute reports the requests crmlink makes on a timer or per connection, not per
// call: the reconciler's lists and its event-filter check, and the websocket itself.
func backgroundRoute(key string) bool {
	key = strings.TrimPrefix(key, "WS ")
	switch {
	case key == "GET /ari/channels", key == "GET /ari/bridges", key == "GET /ari/endpoints",
		key == "GET /ari/events", strings.HasPrefix(key, "GET /ari/applications/"),
		strings.HasPrefix(key, "PUT /ari/applications/") && strings.HasSuffix(key, "/eventFilter"):
		return true
	}
	return false
}
