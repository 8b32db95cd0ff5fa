package ari

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/net/websocket"

	"github.com/crmlink/crmlink/clicktocall"
)

// DialerOptions configure a Dialer.
type DialerOptions struct {
	URL, WSURL         string // as the controller's
	Username, Password string
	// Application is the dialer's own ARI application ("crmlink-calls"): it takes no
	// calls; it is subscribed to the channels it originates, to follow them.
	Application string
	// Context is where an answered manager phone dials the client: the outgoing context
	// office phones dial out through (the trunk).
	Context     string
	RingTimeout time.Duration
	RESTTimeout time.Duration
	Logger      zerolog.Logger
}

// Dialer places click-to-call calls with ARI originate into the dialplan: every phone of
// the manager rings with the client's number shown; the first to answer runs the outgoing
// context with the client's number as the extension, and its Dial() rings the client, as
// if the manager had keyed the number in. The others stop ringing. Asterisk, not crmlink,
// connects the call, so it is an ordinary outgoing call from the manager's phone for the
// call observer, and it goes on if crmlink stops.
type Dialer struct {
	opts      DialerOptions
	rest      *restClient
	connected atomic.Bool

	mu   sync.Mutex
	legs map[string]*dialing // channel id -> its attempt
}

// DialerEvents are the event types the dialer's application lets through.
var DialerEvents = []string{"ChannelStateChange", "Dial", "ChannelDestroyed"}

// dialPrefix starts the id of every channel the dialer originates; the observer and the
// controller treat them as the manager's own phone calling out.
const dialPrefix = "crmlink-c2c-"

// NewDialer checks the options; Run connects.
func NewDialer(opts DialerOptions) (*Dialer, error) {
	if opts.Application == "" || opts.URL == "" || opts.WSURL == "" || opts.Context == "" {
		return nil, errors.New("ari dialer: application, url, ws_url and context are required")
	}
	if opts.RESTTimeout <= 0 {
		opts.RESTTimeout = 2 * time.Second
	}
	if opts.RingTimeout <= 0 {
		opts.RingTimeout = 20 * time.Second
	}
	return &Dialer{opts: opts, rest: newRESTClient(opts.URL, opts.Username, opts.Password, opts.RESTTimeout, 4),
		legs: map[string]*dialing{}}, nil
}

// Connected reports whether the dialer's application is registered in Asterisk.
func (d *Dialer) Connected() bool { return d.connected.Load() }

// dialing is one attempt while its channels live.
type dialing struct {
	a      clicktocall.Attempt
	legs   map[string]*dialLeg
	winner string // the leg the manager answered
	status string // the last DIALSTATUS of the winner's Dial() to the client
	done   bool
	timer  *time.Timer
}

type dialLeg struct {
	endpoint string
	gone     bool
	cause    int
}

// Place rings every phone of the manager. It fails only without Asterisk; a call none of
// whose phones could ring has ended (manager_unreachable) when it returns.
func (d *Dialer) Place(ctx context.Context, a clicktocall.Attempt) error {
	if !d.connected.Load() {
		return errors.New("not connected to Asterisk's ARI")
	}
	k := &dialing{a: a, legs: map[string]*dialLeg{}}
	vars := map[string]string{}
	if a.CallerID != "" {
		vars["CALLERID(num)"] = a.CallerID
		vars["CALLERID(name)"] = a.CallerID
	}
	// The manager's phone shows whom it is about to call; "i": set on the channel only,
	// before it rings (no update is sent to anyone).
	vars["CONNECTEDLINE(num,i)"] = string(a.Client)
	vars["CONNECTEDLINE(name,i)"] = string(a.Client)
	var errs []error
	for i, ep := range a.Endpoints {
		id := fmt.Sprintf("%s%s-%d", dialPrefix, a.ID, i)
		d.mu.Lock()
		k.legs[id] = &dialLeg{endpoint: ep}
		d.legs[id] = k
		d.mu.Unlock()
		err := d.originate(ctx, id, ep, a.Dial, vars)
		if err == nil {
			// The application follows the channel from now on; one that is gone already
			// (it failed at once) has no events to follow.
			if serr := d.rest.subscribe(ctx, d.opts.Application, "channel:"+id); serr != nil {
				d.opts.Logger.Debug().Err(serr).Str("leg", id).Msg("click-to-call: subscribe to a leg")
				if _, gerr := d.channel(ctx, id); isGone(gerr) {
					d.legGone(id, 0)
				}
			}
			continue
		}
		errs = append(errs, fmt.Errorf("%s: %w", ep, err))
		d.legGone(id, 0)
	}
	if len(errs) > 0 {
		// Asterisk refuses to originate to a phone that is not registered ("Allocation
		// failed"); with none left ringing the call has ended as manager_unreachable.
		d.opts.Logger.Info().Err(errors.Join(errs...)).Str("call", a.ID).Msg("click-to-call: phones of the manager that could not ring")
	}
	d.mu.Lock()
	if !k.done {
		// Asterisk ends each leg at the originate timeout; this is the safety net should
		// an event be lost.
		k.timer = time.AfterFunc(d.opts.RingTimeout+5*time.Second, func() { d.giveUp(k) })
	}
	d.mu.Unlock()
	return nil
}

// originate rings one phone; once answered it runs the outgoing context at the client's
// number.
func (d *Dialer) originate(ctx context.Context, id, endpoint, exten string, vars map[string]string) error {
	q := url.Values{
		"endpoint":  {endpoint},
		"context":   {d.opts.Context},
		"extension": {exten},
		"priority":  {"1"},
		"channelId": {id},
		"timeout":   {strconv.Itoa(int(d.opts.RingTimeout / time.Second))},
	}
	return d.rest.do(ctx, http.MethodPost, "/channels", q, map[string]any{"variables": vars}, nil)
}

func (d *Dialer) channel(ctx context.Context, id string) (string, error) {
	var ch struct {
		State string `json:"state"`
	}
	err := d.rest.get(ctx, channelPath(id), &ch)
	return ch.State, err
}

// giveUp ends an attempt whose legs outlived the ring timeout without their events.
func (d *Dialer) giveUp(k *dialing) {
	d.mu.Lock()
	var ringing []string
	if k.winner == "" && !k.done {
		for id, l := range k.legs {
			if !l.gone {
				ringing = append(ringing, id)
			}
		}
	}
	d.mu.Unlock()
	for _, id := range ringing {
		ctx, cancel := context.WithTimeout(context.Background(), d.opts.RESTTimeout)
		err := d.rest.hangup(ctx, id, "normal")
		cancel()
		if err == nil || isGone(err) {
			d.legGone(id, 19)
		}
	}
}

// Run follows the dialer's calls until ctx ends, reconnecting after a websocket drop.
func (d *Dialer) Run(ctx context.Context) error {
	log := d.opts.Logger.With().Str("component", "click-to-call").Str("app", d.opts.Application).Logger()
	defer d.rest.closeIdle()
	for wait := time.Second; ; {
		err := d.session(ctx, log)
		d.connected.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		log.Warn().Err(err).Dur("retry_in", wait).Msg("click-to-call websocket down; calls in progress are checked when it is back")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// dialerEvent is the part of an ARI event the dialer reads.
type dialerEvent struct {
	Type    string `json:"type"`
	Channel *struct {
		ID    string `json:"id"`
		State string `json:"state"`
	} `json:"channel"`
	Caller *struct {
		ID string `json:"id"`
	} `json:"caller"`
	Dialstatus string `json:"dialstatus"`
	Cause      int    `json:"cause"`
}

func (d *Dialer) session(ctx context.Context, log zerolog.Logger) error {
	q := url.Values{"app": {d.opts.Application}, "api_key": {d.opts.Username + ":" + d.opts.Password}}
	cfg, err := websocket.NewConfig(d.opts.WSURL+"?"+q.Encode(), "http://localhost/")
	if err != nil {
		return fmt.Errorf("click-to-call websocket %s: %w", d.opts.WSURL, err)
	}
	ws, err := cfg.DialContext(ctx)
	if err != nil {
		return fmt.Errorf("click-to-call websocket %s: %w", d.opts.WSURL, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = ws.Close() })
	defer stop()
	defer ws.Close()
	if err := d.rest.filterEvents(ctx, d.opts.Application, DialerEvents); err != nil {
		return fmt.Errorf("click-to-call event filter: %w", err)
	}
	d.resubscribe(ctx, log)
	d.connected.Store(true)
	log.Info().Msg("click-to-call ready")
	for {
		var data []byte
		if err := websocket.Message.Receive(ws, &data); err != nil {
			return fmt.Errorf("click-to-call websocket: %w", err)
		}
		var e dialerEvent
		if err := json.Unmarshal(data, &e); err != nil {
			log.Warn().Err(err).Msg("click-to-call: undecodable event skipped")
			continue
		}
		d.feed(ctx, e, log)
	}
}

// resubscribe follows the legs of calls in progress again after a reconnect (a new
// websocket is a new application state); a leg gone meanwhile ends as lost.
func (d *Dialer) resubscribe(ctx context.Context, log zerolog.Logger) {
	d.mu.Lock()
	var ids []string
	for id, k := range d.legs {
		if !k.legs[id].gone {
			ids = append(ids, id)
		}
	}
	d.mu.Unlock()
	for _, id := range ids {
		if err := d.rest.subscribe(ctx, d.opts.Application, "channel:"+id); err != nil {
			if _, gerr := d.channel(ctx, id); isGone(gerr) {
				log.Warn().Str("leg", id).Msg("click-to-call: a leg ended while the websocket was down")
				d.legGone(id, 0)
			}
		}
	}
}

// feed takes one event of a leg.
func (d *Dialer) feed(ctx context.Context, e dialerEvent, log zerolog.Logger) {
	switch e.Type {
	case "ChannelStateChange":
		if e.Channel != nil && e.Channel.State == "Up" {
			d.answered(ctx, e.Channel.ID, log)
		}
	case "Dial":
		if e.Caller != nil {
			d.dialled(e.Caller.ID, e.Dialstatus)
		}
	case "ChannelDestroyed":
		if e.Channel != nil {
			d.legGone(e.Channel.ID, e.Cause)
		}
	}
}

// answered: the manager picked up one phone; the others stop ringing.
func (d *Dialer) answered(ctx context.Context, id string, log zerolog.Logger) {
	d.mu.Lock()
	k := d.legs[id]
	if k == nil || k.winner != "" {
		d.mu.Unlock()
		return
	}
	k.winner = id
	var others []string
	for other, l := range k.legs {
		if other != id && !l.gone {
			others = append(others, other)
		}
	}
	d.mu.Unlock()
	log.Info().Str("call", k.a.ID).Str("leg", id).Int64("manager", int64(k.a.Manager)).Msg("manager answered; dialling the client")
	for _, other := range others {
		if err := d.rest.hangup(cleanup(ctx), other, "normal"); err != nil && !isGone(err) {
			log.Warn().Err(err).Str("leg", other).Msg("click-to-call: stop ringing another phone")
		}
	}
}

// dialled: the answered phone's Dial() to the client moved on.
func (d *Dialer) dialled(id, status string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := d.legs[id]
	if k == nil || k.done {
		return
	}
	if k.winner == "" {
		k.winner = id // the Dial came before the state change
	}
	if id != k.winner {
		return
	}
	k.status = status
	switch status {
	case "", "RINGING", "PROGRESS", "PROCEEDING":
		k.a.Update(clicktocall.RingingClient, "")
	case "ANSWER":
		k.a.Update(clicktocall.Talking, "")
	}
}

// legGone records a leg's end, and ends the attempt when it was the answered one or the
// last one ringing.
func (d *Dialer) legGone(id string, cause int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := d.legs[id]
	if k == nil {
		return
	}
	delete(d.legs, id)
	l := k.legs[id]
	l.gone, l.cause = true, cause
	if k.done {
		return
	}
	switch {
	case k.winner == id:
		k.finish(clientCause(k.status))
	case k.winner == "" && k.allGone():
		k.finish(managerCause(k.legs))
	}
}

func (k *dialing) allGone() bool {
	for _, l := range k.legs {
		if !l.gone {
			return false
		}
	}
	return true
}

func (k *dialing) finish(c clicktocall.Cause) {
	k.done = true
	if k.timer != nil {
		k.timer.Stop()
	}
	k.a.Update(clicktocall.Ended, c)
}

// clientCause is how a call the manager answered ended, by the DIALSTATUS of its Dial()
// to the client.
func clientCause(status string) clicktocall.Cause {
	switch status {
	case "ANSWER":
		return clicktocall.Completed
	case "BUSY":
		return clicktocall.ClientBusy
	case "NOANSWER":
		return clicktocall.ClientNoAnswer
	case "CHANUNAVAIL", "CONGESTION":
		return clicktocall.ClientUnreachable
	}
	return clicktocall.Cancelled
}

// managerCause is why none of the manager's phones answered, by the hangup causes (Q.850)
// of their channels: all declined (17 user busy, 21 call rejected), all unreachable, or
// else no answer.
func managerCause(legs map[string]*dialLeg) clicktocall.Cause {
	busy, unreachable := 0, 0
	for _, l := range legs {
		switch l.cause {
		case 17, 21:
			busy++
		case 1, 3, 20, 27, 34, 38, 41, 42, 47, 0:
			unreachable++
		}
	}
	switch {
	case busy > 0 && busy+unreachable == len(legs):
		return clicktocall.ManagerBusy
	case unreachable == len(legs):
		return clicktocall.ManagerUnreachable
	}
	return clicktocall.ManagerNoAnswer
}
