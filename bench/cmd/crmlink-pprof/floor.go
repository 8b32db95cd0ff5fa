package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/websocket"

	"github.com/crmlink/crmlink/internal/config"
)

// floor is the Stasis hop alone, for the benchmark's stasis-floor paths (--floor): in place
// of crmlink, the least an ARI application can do with a call. It takes the configuration's
// application over Asterisk's event websocket, lets only StasisStart and the answers to its
// REST requests (over the same websocket) through the event filter, and answers every
// StasisStart with what the mode names, then the continue into the configuration's dial
// context at the number dialled:
//
//	continue          the continue alone (the dial context finds CRMLINK_DIAL set by
//	                  the dialplan before Stasis, or dials its default)
//	vars              one request setting crmlink's dial variables first
//	follow            the channel subscribed first, as crmlink's controller follows it
//	follow,vars       both, as crmlink does with ringing: dialplan
//	nofilter          (added to any) no event filter: every event is sent and counted
//
// It serves /healthz and an empty /metrics on http.listen for the benchmark, and prints
// the events it received by type when it stops.
func floor(ctx context.Context, cfg *config.Config, mode string) error {
	opts := map[string]bool{}
	for _, m := range strings.Split(mode, ",") {
		opts[strings.TrimSpace(m)] = true
	}
	ari := cfg.Asterisk.ARI
	dialCtx := ari.DialContext
	if dialCtx == "" {
		dialCtx = "crmlink-dial"
	}
	var counts sync.Map // event type -> *atomic.Int64
	var up atomic.Bool
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !up.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("/metrics", func(http.ResponseWriter, *http.Request) {})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	// Asterisk may be restarted under it (the rig is shared): connect again.
	for ctx.Err() == nil {
		err := floorConn(ctx, ari, dialCtx, opts, &counts, &up)
		up.Store(false)
		if ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "floor: websocket down, connecting again:", err)
			select {
			case <-ctx.Done():
			case <-time.After(300 * time.Millisecond):
			}
		}
	}
	var lines []string
	counts.Range(func(k, v any) bool {
		lines = append(lines, fmt.Sprintf("%s %d", k, v.(*atomic.Int64).Load()))
		return true
	})
	sort.Strings(lines)
	fmt.Fprintln(os.Stderr, "floor: events received:", strings.Join(lines, ", "))
	return nil
}

// floorConn serves one connection of the floor's websocket until it closes.
func floorConn(ctx context.Context, ari config.ARI, dialCtx string, opts map[string]bool, counts *sync.Map, up *atomic.Bool) error {
	q := url.Values{"app": {ari.Application}, "api_key": {ari.Username + ":" + ari.Password}}
	wc, err := websocket.NewConfig(ari.WSURL+"?"+q.Encode(), "http://localhost/")
	if err != nil {
		return err
	}
	conn, err := wc.DialContext(ctx)
	if err != nil {
		return fmt.Errorf("ARI websocket: %w", err)
	}
	defer conn.Close()
	var (
		wmu sync.Mutex
		seq atomic.Uint64
	)
	send := func(method, uri string, query url.Values, body string) {
		msg := map[string]any{"type": "RESTRequest", "request_id": strconv.FormatUint(seq.Add(1), 36), "method": method, "uri": uri}
		if body != "" {
			msg["content_type"], msg["message_body"] = "application/json", body
		}
		var qs []map[string]string
		for k, vs := range query {
			for _, v := range vs {
				qs = append(qs, map[string]string{"name": k, "value": v})
			}
		}
		if len(qs) > 0 {
			msg["query_strings"] = qs
		}
		data, _ := json.Marshal(msg)
		wmu.Lock()
		_ = websocket.Message.Send(conn, string(data))
		wmu.Unlock()
	}
	if !opts["nofilter"] {
		send("PUT", "applications/"+url.PathEscape(ari.Application)+"/eventFilter", nil,
			`{"allowed":[{"type":"StasisStart"},{"type":"RESTResponse"}]}`)
	}
	send("GET", "applications/"+url.PathEscape(ari.Application), nil, "") // its answer says we are up
	vars := url.Values{"variable": {"ARRAY(CRMLINK_RESULT,CRMLINK_REASON,CRMLINK_OWNER,CRMLINK_SOURCE,CRMLINK_DIAL,CRMLINK_RING_TIMEOUT)"},
		"value": {"ROUTED,,1001,cache,PJSIP/bench-mgr1,5"}}

	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	for {
		var data []byte
		if err := websocket.Message.Receive(conn, &data); err != nil {
			return err
		}
		var e struct {
			Type       string `json:"type"`
			Variable   string `json:"variable"`
			StatusCode int    `json:"status_code"`
			Channel    struct {
				ID       string `json:"id"`
				Dialplan struct {
					Exten string `json:"exten"`
				} `json:"dialplan"`
			} `json:"channel"`
		}
		if json.Unmarshal(data, &e) != nil {
			continue
		}
		key := e.Type
		if e.Variable != "" {
			key += " " + e.Variable // which variables a call sets
		}
		n, _ := counts.LoadOrStore(key, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		switch e.Type {
		case "RESTResponse":
			up.Store(true)
			if e.StatusCode >= 300 {
				fmt.Fprintln(os.Stderr, "floor: REST answer", string(data))
			}
		case "StasisStart":
			id := url.PathEscape(e.Channel.ID)
			if opts["follow"] {
				send("POST", "applications/"+url.PathEscape(ari.Application)+"/subscription", url.Values{"eventSource": {"channel:" + e.Channel.ID}}, "")
			}
			if opts["vars"] {
				send("POST", "channels/"+id+"/variable", vars, "")
			}
			send("POST", "channels/"+id+"/continue", url.Values{"context": {dialCtx}, "extension": {e.Channel.Dialplan.Exten}, "priority": {"1"}}, "")
		}
	}
}
