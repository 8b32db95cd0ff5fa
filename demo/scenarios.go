package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
	"github.com/crmlink/crmlink/pbx/sip/siptest"
)

// ringWait bounds every wait for a phone to ring that does not include a ring timeout.
const ringWait = 10 * time.Second

// scenario is one call of the demo and what it must do.
type scenario struct {
	title  string
	number string // the caller id the "PSTN" sends
	caller string // who that is in the demo company
	expect string // one line for the table
	// call places the call and plays the phones; it fills who rang and the result.
	call func(ctx context.Context, d *demo, r *row) error
	// records checks what crmlink wrote to the CRM for this call.
	records func(d *demo, c sandbox.Created) []string
	// queued: the call's records are not written now (crmlink stopped), so play does not
	// wait for a call note.
	queued bool
}

func scenarios() []scenario {
	return []scenario{
		{
			title: "known client -> personal manager", number: "84951000001", caller: "Irina Sokolova, Anna's client",
			expect: "ROUTED, Anna's phone rings",
			call: func(ctx context.Context, d *demo, r *row) error {
				call, err := d.dial(ctx, r, "84951000001")
				if err != nil {
					return err
				}
				in, err := d.ring(ctx, "101", ringWait)
				if err != nil {
					return err
				}
				if err := answer(ctx, in, call); err != nil {
					return err
				}
				r.rang = append(r.rang, "101 Anna: answered")
				vars, err := d.ari.callerVars("84951000001", "CRMLINK_RESULT", "CRMLINK_REASON", "CRMLINK_OWNER", "CRMLINK_SOURCE")
				if err != nil {
					return fmt.Errorf("reading CRMLINK_* on the caller's channel: %w", err)
				}
				r.setResult(d, vars["CRMLINK_RESULT"], vars["CRMLINK_REASON"], vars["CRMLINK_OWNER"], vars["CRMLINK_SOURCE"])
				r.expectResult("ROUTED", "", "1001")
				d.say("Anna answers: bridged with the client (CRMLINK_RESULT=%s, CRMLINK_OWNER=%s, CRMLINK_SOURCE=%s)",
					vars["CRMLINK_RESULT"], vars["CRMLINK_OWNER"], vars["CRMLINK_SOURCE"])
				// A short conversation; Anna's phone sends audio, which the dialplan records.
				if err := d.phones["101"].SendTone(ctx, in.Request().Body(), 2*time.Second); err != nil {
					return err
				}
				if err := hangup(ctx, call, in); err != nil {
					return err
				}
				r.noOtherPhone(d, "101")
				return nil
			},
			records: func(d *demo, c sandbox.Created) []string {
				return expectRecords(c, 0, 0, 0, func(p *[]string) {
					noteOn(p, c, "leads", 4001, "a call note on the open deal 4001 (not the closed 4002)")
				})
			},
		},
		{
			title: "unknown number -> operator desk", number: "84959990001", caller: "a new caller",
			expect: "FALLBACK not_found; contact + deal",
			call: func(ctx context.Context, d *demo, r *row) error {
				return d.fallbackAnswered(ctx, r, "84959990001", "not_found", "")
			},
			records: func(d *demo, c sandbox.Created) []string {
				return expectRecords(c, 1, 1, 0, func(p *[]string) {
					if len(c.Contacts) == 1 && !slices.Contains(c.Contacts[0].Phones, "+74959990001") {
						*p = append(*p, fmt.Sprintf("the new contact has phones %v, want +74959990001", c.Contacts[0].Phones))
					}
					if len(c.Leads) == 1 {
						if len(c.Contacts) == 1 && !slices.Contains(c.Leads[0].ContactIDs, c.Contacts[0].ID) {
							*p = append(*p, "the new deal is not on the new contact")
						}
						noteOn(p, c, "leads", c.Leads[0].ID, "a call note on the new deal")
					}
				})
			},
		},
		{
			title: "manager off schedule", number: "84951000003", caller: "Olga Belova, Vera's client",
			expect: "FALLBACK owner_unavailable, 104 quiet",
			call: func(ctx context.Context, d *demo, r *row) error {
				return d.fallbackAnswered(ctx, r, "84951000003", "owner_unavailable", "1003")
			},
			records: func(d *demo, c sandbox.Created) []string {
				return expectRecords(c, 0, 1, 0, func(p *[]string) {
					if len(c.Leads) == 1 {
						l := c.Leads[0]
						if !slices.Contains(l.ContactIDs, 2003) || l.ResponsibleUserID != 1003 {
							*p = append(*p, fmt.Sprintf("the new deal is on contacts %v for user %d, want Olga's (2003) for Vera (1003)", l.ContactIDs, l.ResponsibleUserID))
						}
						noteOn(p, c, "leads", l.ID, "a call note on the new deal (her only deal is closed)")
					}
				})
			},
		},
		{
			title: "CRM times out", number: "84951000006", caller: "Mikhail Zaitsev, Gleb's client",
			expect: "FALLBACK timeout after 1.5 s",
			call: func(ctx context.Context, d *demo, r *row) error {
				if err := d.sandboxControl("hang", `{"enabled":true}`); err != nil {
					return err
				}
				d.say("amoCRM sandbox: every API request now hangs (POST /_sandbox/hang)")
				start := time.Now()
				err := d.fallbackAnswered(ctx, r, "84951000006", "timeout", "", func() {
					took := time.Since(start)
					r.result = append(r.result, fmt.Sprintf("after %.1f s", took.Seconds()))
					if took > 2500*time.Millisecond {
						r.problems = append(r.problems, fmt.Sprintf("the desk rang %.1f s after the call, want about lookup_timeout (1.5 s)", took.Seconds()))
					}
					// The CRM recovers: the call's records are written once it answers again.
					if err := d.sandboxControl("hang", `{"enabled":false}`); err != nil {
						r.problems = append(r.problems, err.Error())
					}
					d.say("the desk rang %.1f s after the call; amoCRM answers again", took.Seconds())
				})
				_ = d.sandboxControl("hang", `{"enabled":false}`)
				return err
			},
			records: func(d *demo, c sandbox.Created) []string {
				return expectRecords(c, 0, 1, 0, func(p *[]string) {
					if len(c.Leads) == 1 {
						noteOn(p, c, "leads", c.Leads[0].ID, "a call note on the new deal")
					}
				})
			},
		},
		{
			title: "missed call", number: "84951000002", caller: "Pavel Orlov, Boris's client",
			expect: "nobody answers; task for Boris",
			call: func(ctx context.Context, d *demo, r *row) error {
				call, err := d.dial(ctx, r, "84951000002")
				if err != nil {
					return err
				}
				boris, err := d.ring(ctx, "102", ringWait)
				if err != nil {
					return err
				}
				d.say("Boris's phone (102) rings; nobody picks up (routing.ring_timeout: 10s)")
				start := time.Now()
				if err := waitFor(ctx, d.say, "crmlink to give up on Boris's phone", 20*time.Second, func() (bool, error) {
					return isDone(boris.Done()), nil
				}); err != nil {
					return err
				}
				r.rang = append(r.rang, fmt.Sprintf("102 Boris: no answer (%.0f s)", time.Since(start).Seconds()))
				desk, err := d.ring(ctx, "100", ringWait)
				if err != nil {
					return err
				}
				r.fromHeaders(d, desk)
				r.expectResult("FALLBACK", "owner_no_answer", "1002")
				d.say("the operator desk (100) rings: CRMLINK_REASON=%s; nobody answers there either", desk.Header("X-CRMLINK-Reason"))
				time.Sleep(2 * time.Second)
				if err := hangup(ctx, call, desk); err != nil {
					return err
				}
				r.rang = append(r.rang, "100 desk: no answer", "the caller gave up")
				r.noOtherPhone(d, "102", "100")
				return nil
			},
			records: func(d *demo, c sandbox.Created) []string {
				return expectRecords(c, 0, 0, 1, func(p *[]string) {
					if len(c.Tasks) == 1 {
						t := c.Tasks[0]
						if t.EntityType != "leads" || t.EntityID != 4003 || t.ResponsibleUserID != 1002 {
							*p = append(*p, fmt.Sprintf("the task is on %s %d for user %d, want on deal 4003 for Boris (1002)", t.EntityType, t.EntityID, t.ResponsibleUserID))
						}
						if due := time.Until(time.Unix(t.CompleteTill, 0)); due < 50*time.Minute || due > 70*time.Minute {
							*p = append(*p, fmt.Sprintf("the task is due in %s, want about 1 h (missed.deadline)", due.Round(time.Minute)))
						}
					}
					noteOn(p, c, "leads", 4003, "a missed-call note on the open deal 4003")
				})
			},
		},
		{
			title: "crmlink stopped mid-call", number: "84951000001", caller: "Irina Sokolova again",
			expect: "SIGTERM, call stays up, exit 0",
			queued: true,
			call:   stopMidCall,
			records: func(d *demo, c sandbox.Created) []string {
				if n := len(c.Contacts) + len(c.Leads) + len(c.Tasks) + len(c.Notes); n > 0 {
					return []string{fmt.Sprintf("%d records written after crmlink stopped its queue, want none until the next start", n)}
				}
				return nil
			},
		},
	}
}

// stopMidCall stops crmlink (SIGTERM, as systemctl stop does) while a routed call is
// bridged: the call must stay up, a new call meanwhile goes to the fallback, and crmlink
// exits once the call ends. The call's outcome waits in the durable queue (data_dir) for
// the next start, so no record appears now.
func stopMidCall(ctx context.Context, d *demo, r *row) error {
	call, err := d.dial(ctx, r, "84951000001")
	if err != nil {
		return err
	}
	anna, err := d.ring(ctx, "101", ringWait)
	if err != nil {
		return err
	}
	if err := answer(ctx, anna, call); err != nil {
		return err
	}
	r.rang = append(r.rang, "101 Anna: answered")
	vars, err := d.ari.callerVars("84951000001", "CRMLINK_RESULT", "CRMLINK_REASON", "CRMLINK_OWNER", "CRMLINK_SOURCE")
	if err != nil {
		return err
	}
	r.setResult(d, vars["CRMLINK_RESULT"], vars["CRMLINK_REASON"], vars["CRMLINK_OWNER"], vars["CRMLINK_SOURCE"])
	r.expectResult("ROUTED", "", "1001")
	d.say("Anna and Irina are talking (CRMLINK_SOURCE=%s: the owner came from the cache); now SIGTERM to crmlink", vars["CRMLINK_SOURCE"])

	stopped := time.Now()
	if err := d.crmlink.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	time.Sleep(1500 * time.Millisecond)
	if isDone(call.Done()) || isDone(anna.Done()) || d.crmlink.exited() {
		r.problems = append(r.problems, "the call in progress did not survive SIGTERM")
		return nil
	}
	r.rang = append(r.rang, "SIGTERM: call stays up")
	d.say("1.5 s after SIGTERM the call is still up and crmlink still runs (draining)")

	// A new call while crmlink drains goes to the operator desk.
	other, err := d.dial(ctx, r, "84959990002")
	if err != nil {
		return err
	}
	desk, err := d.ring(ctx, "100", ringWait)
	if err != nil {
		return err
	}
	res, reason := desk.Header("X-CRMLINK-Result"), desk.Header("X-CRMLINK-Reason")
	r.result = append(r.result, "new call: "+res+" "+reason)
	if res != "FALLBACK" || reason != "disabled" {
		r.problems = append(r.problems, fmt.Sprintf("a call during the drain got %s/%s, want FALLBACK/disabled", res, reason))
	}
	r.rang = append(r.rang, "new call: 100 desk")
	d.say("a new call meanwhile rings the desk: %s %s", res, reason)
	if err := hangup(ctx, other, desk); err != nil {
		return err
	}

	// The conversation ends; crmlink exits right after.
	d.current = &callerCall{phone: nil, call: call}
	if err := hangup(ctx, call, anna); err != nil {
		return err
	}
	ended := time.Now()
	select {
	case <-d.crmlink.done:
	case <-time.After(10 * time.Second):
		r.problems = append(r.problems, "crmlink did not exit within 10 s after the last call ended")
		return nil
	}
	if err := d.crmlink.werr; err != nil {
		r.problems = append(r.problems, fmt.Sprintf("crmlink exited with %v, want status 0", err))
	}
	msg := lastMessage(filepath.Join(d.opts.work, "crmlink.log"))
	r.rang = append(r.rang, fmt.Sprintf("exit 0 after %.0f s", time.Since(stopped).Seconds()))
	d.say("crmlink exited %s after the call ended (%.1f s after SIGTERM); its last line: %s",
		time.Since(ended).Round(time.Millisecond), time.Since(stopped).Seconds(), msg)
	r.records = append(r.records, "none now: both calls' outcomes are", "queued in data_dir for the next start")
	d.stoppedCrmlink = true
	return nil
}

// play runs one scenario and checks its CRM records.
func (d *demo) play(ctx context.Context, sc scenario) row {
	r := row{title: sc.title, caller: sc.number + " " + sc.caller, expect: sc.expect}
	start := time.Now()
	d.drainPhones()
	cardsBefore := len(d.callEvents())
	if err := sc.call(ctx, d, &r); err != nil {
		r.problems = append(r.problems, err.Error())
		return r
	}
	// Every call ends in a call note; the rules engine writes it last.
	var delta sandbox.Created
	if !sc.queued {
		err := waitFor(ctx, d.say, "crmlink's CRM records (the event queue, then the rules engine)", 20*time.Second, func() (bool, error) {
			c, err := d.created()
			if err != nil {
				return false, err
			}
			delta = d.seen.delta(c)
			return len(delta.Notes) > 0, nil
		})
		if err != nil {
			r.problems = append(r.problems, err.Error())
		}
	}
	time.Sleep(300 * time.Millisecond) // anything written after the note would show now
	if c, err := d.created(); err == nil {
		delta = d.seen.delta(c)
		d.seen.add(c)
	}
	if !sc.queued || len(r.records) == 0 {
		r.records = d.describe(delta)
	}
	if cards := d.callEvents(); len(cards) > cardsBefore {
		r.records = append(d.describeCards(cards[cardsBefore:]), r.records...)
	}
	r.problems = append(r.problems, sc.records(d, delta)...)
	r.took = time.Since(start)
	for _, rec := range r.records {
		d.say("CRM: %s", rec)
	}
	return r
}

// callerCall is the call the "PSTN" phone is placing.
type callerCall struct {
	phone *siptest.Phone
	call  *siptest.Call
}

// dial calls 200 ([from-trunk] -> Stasis(crmlink)) from a phone on the trunk's address.
// The phone outlives an interrupt (ctx) so that cleanup can still hang the call up.
func (d *demo) dial(ctx context.Context, r *row, number string) (*siptest.Call, error) {
	p, err := siptest.NewPhone(context.Background(), siptest.PhoneOptions{User: number, BindHost: "127.0.0.2"})
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, ringWait)
	defer cancel()
	call, err := p.Call(cctx, "sip:200@127.0.0.1:5060")
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("calling 200: %w", err)
	}
	cur := &callerCall{phone: p, call: call}
	d.current = cur
	go func() {
		<-call.Done()
		time.Sleep(time.Second) // let the last responses be acknowledged
		p.Close()
	}()
	d.say("INVITE sip:200@127.0.0.1:5060 from %s", number)
	return call, nil
}

// ring waits for a phone to ring and answers 180 Ringing, as a real phone does.
func (d *demo) ring(ctx context.Context, ext string, within time.Duration) (*siptest.IncomingCall, error) {
	select {
	case in := <-d.phones[ext].Incoming():
		if err := in.Ringing(); err != nil {
			return nil, err
		}
		return in, nil
	case <-time.After(within):
		return nil, fmt.Errorf("phone %s did not ring within %s", ext, within)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// fallbackAnswered is a call that crmlink sends to the operator desk, where it is answered.
// onRing runs as soon as the desk rings.
func (d *demo) fallbackAnswered(ctx context.Context, r *row, number, reason, owner string, onRing ...func()) error {
	call, err := d.dial(ctx, r, number)
	if err != nil {
		return err
	}
	desk, err := d.ring(ctx, "100", ringWait)
	if err != nil {
		return err
	}
	r.fromHeaders(d, desk)
	r.expectResult("FALLBACK", reason, owner)
	d.say("the operator desk (100) rings: X-CRMLINK-Result=%s X-CRMLINK-Reason=%s X-CRMLINK-Owner=%s",
		desk.Header("X-CRMLINK-Result"), desk.Header("X-CRMLINK-Reason"), desk.Header("X-CRMLINK-Owner"))
	for _, f := range onRing {
		f()
	}
	if err := answer(ctx, desk, call); err != nil {
		return err
	}
	r.rang = append(r.rang, "100 desk: answered")
	time.Sleep(time.Second)
	// The operator hangs up.
	if err := hangup(ctx, desk, call); err != nil {
		return err
	}
	r.noOtherPhone(d, "100")
	return nil
}

// drainPhones forgets calls left over from an earlier scenario.
func (d *demo) drainPhones() {
	for _, p := range d.phones {
		for {
			select {
			case <-p.Incoming():
				continue
			default:
			}
			break
		}
	}
}

func answer(ctx context.Context, in *siptest.IncomingCall, call *siptest.Call) error {
	actx, cancel := context.WithTimeout(ctx, ringWait)
	defer cancel()
	if err := in.Answer(actx); err != nil {
		return fmt.Errorf("answering: %w", err)
	}
	res, err := call.WaitAnswer(actx)
	if err != nil {
		return fmt.Errorf("the caller was not connected: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("the caller got %d %s instead of the answer", res.StatusCode, res.Reason)
	}
	return nil
}

// hangup ends the call from one side and waits until the other side has ended too.
type ender interface {
	Hangup(context.Context) error
	Done() <-chan struct{}
}

func hangup(ctx context.Context, from, other ender) error {
	hctx, cancel := context.WithTimeout(ctx, ringWait)
	defer cancel()
	if err := from.Hangup(hctx); err != nil {
		return fmt.Errorf("hanging up: %w", err)
	}
	select {
	case <-other.Done():
		return nil
	case <-hctx.Done():
		return fmt.Errorf("the other side was not hung up within %s", ringWait)
	}
}

func isDone(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (d *demo) sandboxControl(path, body string) error {
	resp, err := http.Post(d.crmURL+"/_sandbox/"+path, "application/json", bytes.NewBufferString(body))
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /_sandbox/%s: status %d", path, resp.StatusCode)
	}
	return nil
}

// created reads back everything written through the sandbox's API since it started.
func (d *demo) created() (sandbox.Created, error) {
	var c sandbox.Created
	resp, err := http.Get(d.crmURL + "/_sandbox/created")
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&c)
	return c, err
}

// callEvents are the incoming-call cards crmlink asked the sandbox to show so far.
func (d *demo) callEvents() []sandbox.CallEvent {
	var es []sandbox.CallEvent
	resp, err := http.Get(d.crmURL + "/_sandbox/call-events")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(&es)
	return es
}

// seenRecords are the ids of records an earlier scenario created.
type seenRecords struct {
	contacts, leads, tasks, notes map[int64]bool
}

func (s *seenRecords) add(c sandbox.Created) {
	if s.contacts == nil {
		s.contacts, s.leads, s.tasks, s.notes = map[int64]bool{}, map[int64]bool{}, map[int64]bool{}, map[int64]bool{}
	}
	for _, x := range c.Contacts {
		s.contacts[x.ID] = true
	}
	for _, x := range c.Leads {
		s.leads[x.ID] = true
	}
	for _, x := range c.Tasks {
		s.tasks[x.ID] = true
	}
	for _, x := range c.Notes {
		s.notes[x.ID] = true
	}
}

func (s *seenRecords) delta(c sandbox.Created) sandbox.Created {
	var out sandbox.Created
	for _, x := range c.Contacts {
		if !s.contacts[x.ID] {
			out.Contacts = append(out.Contacts, x)
		}
	}
	for _, x := range c.Leads {
		if !s.leads[x.ID] {
			out.Leads = append(out.Leads, x)
		}
	}
	for _, x := range c.Tasks {
		if !s.tasks[x.ID] {
			out.Tasks = append(out.Tasks, x)
		}
	}
	for _, x := range c.Notes {
		if !s.notes[x.ID] {
			out.Notes = append(out.Notes, x)
		}
	}
	return out
}

// expectRecords checks the numbers of new contacts, deals and tasks (notes are checked by
// more), then runs more.
func expectRecords(c sandbox.Created, contacts, leads, tasks int, more func(*[]string)) []string {
	var p []string
	for _, n := range []struct {
		what      string
		got, want int
	}{{"contacts", len(c.Contacts), contacts}, {"deals", len(c.Leads), leads}, {"tasks", len(c.Tasks), tasks}} {
		if n.got != n.want {
			p = append(p, fmt.Sprintf("%d new %s, want %d", n.got, n.what, n.want))
		}
	}
	more(&p)
	if len(c.Notes) != 1 {
		p = append(p, fmt.Sprintf("%d call notes, want 1", len(c.Notes)))
	}
	return p
}

func noteOn(p *[]string, c sandbox.Created, entity string, id int64, what string) {
	if len(c.NotesOn(entity, id)) != 1 {
		*p = append(*p, "missing: "+what)
	}
}

// fromHeaders reads why the call came to the operator desk: the dialplan copies
// CRMLINK_* into X-CRMLINK-* headers of the desk's INVITE ([crmlink-tag]).
func (r *row) fromHeaders(d *demo, in *siptest.IncomingCall) {
	r.setResult(d, in.Header("X-CRMLINK-Result"), in.Header("X-CRMLINK-Reason"), in.Header("X-CRMLINK-Owner"), in.Header("X-CRMLINK-Source"))
}

func (r *row) setResult(d *demo, result, reason, owner, source string) {
	r.got = [3]string{result, reason, owner}
	line := result
	if line == "" {
		line = "(not set)"
	}
	r.result = append(r.result, line)
	if reason != "" {
		r.result = append(r.result, reason)
	}
	if owner != "" {
		id, _ := strconv.ParseInt(owner, 10, 64)
		s := "owner " + owner + " " + d.userName(id)
		if source != "" {
			s += ", " + source
		}
		r.result = append(r.result, s)
	}
}

func (r *row) expectResult(result, reason, owner string) {
	if want := [3]string{result, reason, owner}; r.got != want {
		r.problems = append(r.problems, fmt.Sprintf("CRMLINK_RESULT/REASON/OWNER = %q/%q/%q, want %q/%q/%q",
			r.got[0], r.got[1], r.got[2], result, reason, owner))
	}
}

// noOtherPhone checks that no phone but the expected ones rang.
func (r *row) noOtherPhone(d *demo, rang ...string) {
	for ext, p := range d.phones {
		if slices.Contains(rang, ext) {
			continue
		}
		select {
		case in := <-p.Incoming():
			r.problems = append(r.problems, fmt.Sprintf("phone %s rang (from %s) but should not have", ext, in.From()))
		default:
		}
	}
}

func (d *demo) userName(id int64) string {
	for _, u := range d.seed.Users {
		if u.ID == id {
			return u.Name
		}
	}
	return ""
}
