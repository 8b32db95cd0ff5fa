package scenarios

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/events"
	"github.com/crmlink/crmlink/routing"
)

// Engine applies the configured scenarios to call outcomes. It keeps nothing between calls
// itself (the State does), so several engines, in one process or several, may share one
// State. It is safe for concurrent use.
type Engine struct {
	// Clock is the engine's "now": task deadline windows and plan times. Set it before the
	// first HandleCall (tests move it to cross a deadline).
	Clock func() time.Time

	cfg      Config
	dir      crm.Directory
	clients  routing.ClientResolver
	w        crm.Writer
	state    events.State
	region   string
	phones   *crm.PhoneMemo
	loc      *time.Location
	stateTTL time.Duration
	log      zerolog.Logger
	// recordingLink gives the recording link of a call's notes ("" for none).
	recordingLink func(context.Context, routing.CallOutcome) string
}

// Option configures an Engine.
type Option func(*Engine)

// WithRegion is the ISO country for client numbers without a country code (default RU, as
// routing.default_region).
func WithRegion(region string) Option { return func(e *Engine) { e.region = region } }

// WithClients decides which contact and deal a client number means (the Router: it takes
// the routing decision's answer while no webhook has touched it since); default a CRM
// lookup for every outcome (routing.LiveResolver).
func WithClients(c routing.ClientResolver) Option { return func(e *Engine) { e.clients = c } }

// WithClock sets Engine.Clock.
func WithClock(now func() time.Time) Option { return func(e *Engine) { e.Clock = now } }

// WithLocation is the time zone of {date} and {time} in templates (default time.Local).
func WithLocation(loc *time.Location) Option { return func(e *Engine) { e.loc = loc } }

// WithStateTTL is how long an outcome's plan and completed actions are remembered: the
// longest a retry of the same outcome can come after the first attempt and still find them
// (default 7 days).
func WithStateTTL(ttl time.Duration) Option { return func(e *Engine) { e.stateTTL = ttl } }

// WithRecordingURL links each call's recording on its notes: {linkedid} in tmpl is replaced
// by the call's id (recording_url), unless the outcome carries its own link.
func WithRecordingURL(tmpl string) Option {
	return WithRecordingLink(func(_ context.Context, o routing.CallOutcome) string {
		return strings.ReplaceAll(tmpl, "{linkedid}", o.ID)
	})
}

// WithRecordingLink links each call's recording on its notes with the link link gives
// ("" for none: the note goes without), unless the outcome carries its own link. A nil
// link links nothing.
func WithRecordingLink(link func(context.Context, routing.CallOutcome) string) Option {
	return func(e *Engine) { e.recordingLink = link }
}

// WithLogger gets a debug line per action; the zero Logger discards them.
func WithLogger(l zerolog.Logger) Option { return func(e *Engine) { e.log = l } }

// DefaultStateTTL outlives any sensible retry schedule of the event queue.
const DefaultStateTTL = 7 * 24 * time.Hour

// taskRecordSlack keeps a number's task deadline on record a little past the deadline, so
// the record cannot expire on the State's clock before the engine's clock passes it.
const taskRecordSlack = time.Hour

// New returns an engine for cfg, which must pass Validate.
func New(cfg Config, dir crm.Directory, w crm.Writer, state events.State, opts ...Option) (*Engine, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("rules: invalid scenarios:\n%s", strings.Join(errs, "\n"))
	}
	if dir == nil || w == nil || state == nil {
		return nil, errors.New("rules: New needs a CRM directory, a CRM writer and a State")
	}
	e := &Engine{
		Clock:    time.Now,
		cfg:      cfg,
		dir:      dir,
		w:        w,
		state:    state,
		region:   "RU",
		loc:      time.Local,
		stateTTL: DefaultStateTTL,
		log:      zerolog.Nop(),
	}
	for _, o := range opts {
		o(e)
	}
	if e.Clock == nil {
		e.Clock = time.Now
	}
	e.phones = crm.NewPhoneMemo(e.region)
	if e.clients == nil {
		e.clients = routing.LiveResolver(dir, e.region)
	}
	if e.loc == nil {
		e.loc = time.Local
	}
	if e.stateTTL <= 0 {
		e.stateTTL = DefaultStateTTL
	}
	return e, nil
}

// Current is the engine of the moment, which a configuration reload swaps while outcomes
// are handled. HandleOutcome is the event dispatcher's handler of call outcomes.
type Current struct{ atomic.Pointer[Engine] }

// HandleOutcome handles the outcome with the current engine; what its error makes of the
// event is events.Classify's to say.
func (c *Current) HandleOutcome(ctx context.Context, o routing.CallOutcome) error {
	_, err := c.Load().HandleCall(ctx, o)
	return err
}

// Config returns the scenarios the engine applies.
func (e *Engine) Config() Config { return e.cfg }

// Result is what handling one outcome did, in plan order, for logs and tests.
type Result struct {
	OutcomeID string
	Phone     crm.Phone
	// Known: the number was on a CRM contact when the outcome was planned.
	Known bool
	// Resumed: an earlier attempt had planned the outcome; this one carried out its plan.
	Resumed bool
	Steps   []Step
	// Reasons say why the scenarios created less than they could.
	Reasons []string
}

// Step is one action of the plan and what became of it.
type Step struct {
	Kind Kind
	Key  string
	// ID is the contact, lead or task created (0 for Unsorted entries and notes).
	ID int64
	// On is the entity a lead, task or note was attached to.
	On     Ref
	Status StepStatus
	// Reason says why a step was skipped.
	Reason string
}

// StepStatus is what became of an action.
type StepStatus string

const (
	// StepDone: this attempt wrote it.
	StepDone StepStatus = "done"
	// StepEarlier: an earlier attempt of the same outcome wrote it.
	StepEarlier StepStatus = "earlier"
	// StepAdopted: an interrupted earlier attempt had written it without recording so; it
	// was found in the CRM and used instead of writing it again.
	StepAdopted StepStatus = "adopted"
	// StepSkipped: no longer needed when it came to run (see Reason).
	StepSkipped StepStatus = "skipped"
	// StepFailed: this attempt stopped here; HandleCall returned the error.
	StepFailed StepStatus = "failed"
)

// String is a one-line summary such as "contact 1001 done; lead 2001 on contact 1001 done".
func (r Result) String() string {
	if len(r.Steps) == 0 {
		return "nothing to do"
	}
	parts := make([]string, 0, len(r.Steps))
	for _, s := range r.Steps {
		p := string(s.Kind)
		if s.ID != 0 {
			p += " " + strconv.FormatInt(s.ID, 10)
		}
		if s.On != (Ref{}) {
			p += " on " + s.On.String()
		}
		p += " " + string(s.Status)
		if s.Reason != "" {
			p += " (" + s.Reason + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}

// HandleCall plans the outcome (or loads the plan an earlier attempt stored) and carries it
// out, skipping actions already done. An error leaves the outcome safe to retry: the retry
// continues where this attempt stopped. Errors wrapping ErrPermanent are not worth a retry.
func (e *Engine) HandleCall(ctx context.Context, o routing.CallOutcome) (Result, error) {
	res := Result{OutcomeID: o.ID}
	if e.recordingLink != nil && o.RecordingURL == "" {
		o.RecordingURL = e.recordingLink(ctx, o)
	}
	if err := checkOutcome(o); err != nil {
		return res, err
	}
	p, resumed, err := e.loadOrPlan(ctx, o)
	if err != nil {
		return res, err
	}
	res.Phone, res.Known, res.Resumed, res.Reasons = p.Phone, p.Known, resumed, p.Reasons
	if p.Phone == "" {
		// Said once per call at info: it answers "why is this call not in amoCRM".
		e.log.Info().Str("outcome", o.ID).Str("direction", string(o.Direction)).Strs("reasons", p.Reasons).
			Msg("call without a client number: no CRM records")
	}
	res.Steps, err = e.carryOut(ctx, o, p, resumed)
	if err != nil && p.FromDecision && errors.Is(err, crm.ErrRejected) {
		// The decision's contact or deal may have been deleted or merged since the call was
		// routed (no webhook tells): plan again from a CRM lookup rather than lose the note.
		e.log.Info().Err(err).Str("outcome", o.ID).Msg("write on the routing decision's client refused; planning from a CRM lookup")
		if p, _, err = e.planAndStore(ctx, o, true); err != nil {
			return res, err
		}
		res.Phone, res.Known, res.Reasons = p.Phone, p.Known, p.Reasons
		res.Steps, err = e.carryOut(ctx, o, p, true)
	}
	return res, err
}

// carryOut runs the plan's actions in order, up to the first that fails.
func (e *Engine) carryOut(ctx context.Context, o routing.CallOutcome, p planned, resumed bool) ([]Step, error) {
	var steps []Step
	ids := map[Kind]int64{}
	x := e.steps(p.OutcomeID)
	for _, a := range p.Actions {
		step, err := e.run(ctx, x, p, a, resumed, ids)
		if err != nil {
			step.Status = StepFailed
		}
		if err == nil && step.Status != StepSkipped &&
			(step.Kind == KindContact || step.Kind == KindLead || step.Kind == KindAccept) {
			err = e.clientChanged(ctx, p.Phone)
		}
		steps = append(steps, step)
		// Each action is recorded before the next begins, so only the first one not on
		// record can have been written by an interrupted attempt: the ones after it need
		// no look in the CRM.
		resumed = resumed && step.Status == StepEarlier
		if err != nil {
			return steps, fmt.Errorf("rules: outcome %s: %s: %w", o.ID, a.Kind(), err)
		}
		e.log.Debug().Str("outcome", o.ID).Str("action", string(a.Kind())).Str("status", string(step.Status)).
			Int64("id", step.ID).Str("on", step.On.String()).Str("reason", step.Reason).Msg("call scenario action")
	}
	return steps, nil
}

// steps is the executor of the outcome's plan and actions (ActionKey).
func (e *Engine) steps(outcomeID string) events.Steps {
	return events.NewSteps(e.state, outcomeKey(outcomeID), e.stateTTL)
}

// loadOrPlan returns the outcome's stored plan, or plans it and stores the plan before any
// write, so every attempt carries out the same actions whatever the CRM shows by then (a
// contact created by the first attempt must not turn the caller into a "known" client).
func (e *Engine) loadOrPlan(ctx context.Context, o routing.CallOutcome) (planned, bool, error) {
	var p planned
	var planErr error
	resumed, err := e.steps(o.ID).Plan(ctx, func(b []byte) (err error) {
		p, err = decodePlan(b)
		return err
	}, e.encodedPlan(ctx, o, false, &p, &planErr))
	if planErr != nil {
		return planned{}, false, planErr
	}
	if err != nil {
		return planned{}, false, fmt.Errorf("rules: outcome %s: %w", o.ID, err)
	}
	return p, resumed, nil
}

// planAndStore plans the outcome and stores the plan before any write.
func (e *Engine) planAndStore(ctx context.Context, o routing.CallOutcome, live bool) (planned, bool, error) {
	var p planned
	var planErr error
	err := e.steps(o.ID).Replan(ctx, e.encodedPlan(ctx, o, live, &p, &planErr))
	if planErr != nil {
		return planned{}, false, planErr
	}
	if err != nil {
		return planned{}, false, fmt.Errorf("rules: outcome %s: %w", o.ID, err)
	}
	return p, false, nil
}

// encodedPlan plans the outcome into p for the executor to store: nil when it has no
// actions; a planning error goes to planErr as it is.
func (e *Engine) encodedPlan(ctx context.Context, o routing.CallOutcome, live bool, p *planned, planErr *error) func() ([]byte, error) {
	return func() ([]byte, error) {
		if *p, *planErr = e.plan(ctx, o, live); *planErr != nil || len(p.Actions) == 0 {
			return nil, nil
		}
		enc, err := encodePlan(*p)
		if err != nil {
			return nil, fmt.Errorf("encode plan: %w", err)
		}
		return enc, nil
	}
}

// run carries out one action unless an earlier attempt did; ids collects the ids of
// entities the plan created, for the actions that attach to them.
func (e *Engine) run(ctx context.Context, x events.Steps, p planned, a Action, resumed bool, ids map[Kind]int64) (Step, error) {
	step := Step{Kind: a.Kind(), Key: x.Key(string(a.Kind()))}
	switch a := a.(type) {
	case CreateLead:
		step.On = a.Contact
	case CreateTask:
		step.On = a.On
	case AddCallNote:
		step.On = a.On
	}
	// The actions that create what the CRM would take twice run through x.RunOnce, which
	// also tells whether an earlier attempt did them.
	switch a := a.(type) {
	case CreateContact:
		return e.createContact(ctx, x, step, a, resumed, ids)
	case CreateLead:
		return e.createLead(ctx, x, step, p, a, resumed, ids)
	case CreateTask:
		return e.createTask(ctx, x, step, a, resumed, ids)
	case AddCallNote:
		return e.addCallNote(ctx, x, step, p, a, resumed, ids)
	}
	val, done, err := x.Done(ctx, string(a.Kind())) // with the id it created
	if err != nil {
		return step, err
	}
	if done {
		step.Status = StepEarlier
		if _, ok := a.(AcceptUnsorted); ok {
			if err := acceptedIDs(val, ids); err != nil {
				return step, Permanent(err)
			}
			step.ID = ids[KindLead]
			return step, nil
		}
		if len(val) > 0 {
			id, err := events.ParseID(val)
			if err != nil {
				return step, err
			}
			step.ID, ids[a.Kind()] = id, id
		}
		step.On = resolved(step.On, ids)
		return step, nil
	}

	switch a := a.(type) {
	case AddUnsorted:
		if err := e.w.AddUnsortedCalls(ctx, []crm.UnsortedCall{a.Call}); err != nil {
			return step, err
		}
		return e.markDone(ctx, x, step)
	case AcceptUnsorted:
		return e.acceptUnsorted(ctx, x, step, a, ids)
	}
	return step, Permanent(fmt.Errorf("unknown action %T", a))
}

func (e *Engine) markDone(ctx context.Context, x events.Steps, step Step) (Step, error) {
	if err := x.Record(ctx, string(step.Kind), nil); err != nil {
		return step, err
	}
	if step.Status == "" {
		step.Status = StepDone
	}
	return step, nil
}

// ranOnce finishes a step x.RunOnce carried out: its status from how it came to be done,
// and the id it created (0: none) for the actions that attach to it.
func ranOnce(step Step, ran events.Ran, id int64, ids map[Kind]int64) Step {
	switch {
	case ran == events.RanEarlier:
		step.Status = StepEarlier
	case step.Status != "": // set by the step (skipped)
	case ran == events.RanAdopted:
		step.Status = StepAdopted
	default:
		step.Status = StepDone
	}
	if id != 0 {
		step.ID, ids[step.Kind] = id, id
	}
	return step
}

// createdID is the id of the one entity a create request was to make.
func createdID(got []int64, err error, what string) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	if len(got) != 1 || got[0] == 0 {
		return nil, fmt.Errorf("CRM returned %d %s ids for one %s", len(got), what, what)
	}
	return events.IDValue(got[0]), nil
}

func (e *Engine) createContact(ctx context.Context, x events.Steps, step Step, a CreateContact, resumed bool, ids map[Kind]int64) (Step, error) {
	id, ran, err := x.RunOnceID(ctx, string(step.Kind), events.Once{
		Resumed: resumed,
		// An interrupted attempt may have created the contact without recording its id;
		// the plan was made when no contact had the number, so one that has it now is that
		// contact (or a manager's, which must not be duplicated either).
		Find: func() ([]byte, bool, error) {
			for _, ph := range a.Contact.Phones {
				c, err := e.findClient(ctx, ph)
				if err != nil {
					return nil, false, err
				}
				if c.Known {
					return events.IDValue(c.ContactID), true, nil
				}
			}
			return nil, false, nil
		},
		Do: func() ([]byte, error) {
			got, err := e.w.CreateContacts(ctx, []crm.NewContact{a.Contact})
			return createdID(got, err, "contact")
		},
	})
	if err != nil {
		return step, err
	}
	return ranOnce(step, ran, id, ids), nil
}

// adoptWindow allows for the CRM's clock running behind ours when recognising a lead an
// interrupted attempt created.
const adoptWindow = 5 * time.Minute

func (e *Engine) createLead(ctx context.Context, x events.Steps, step Step, p planned, a CreateLead, resumed bool, ids map[Kind]int64) (Step, error) {
	// A contact not created (its action did not run) fails the write, not a record of it.
	on, onErr := resolve(a.Contact, ids)
	id, ran, err := x.RunOnceID(ctx, string(step.Kind), events.Once{
		Resumed: resumed && onErr == nil,
		Find: func() ([]byte, bool, error) {
			id, err := e.findLead(ctx, on.ID, a.Lead, p.PlannedAt.Add(-adoptWindow))
			return events.IDValue(id), id != 0, err
		},
		Do: func() ([]byte, error) {
			if onErr != nil {
				return nil, onErr
			}
			l := a.Lead
			l.ContactIDs = []int64{on.ID}
			got, err := e.w.CreateLeads(ctx, []crm.NewLead{l})
			return createdID(got, err, "lead")
		},
	})
	if onErr == nil {
		step.On = on
	}
	if err != nil {
		return step, err
	}
	return ranOnce(step, ran, id, ids), nil
}

// addCallNote notes the call on the contact or deal. An earlier attempt may have written
// the note and lost the answer; amoCRM does not refuse a second note with the same uniq,
// so a resumed attempt looks first.
func (e *Engine) addCallNote(ctx context.Context, x events.Steps, step Step, p planned, a AddCallNote, resumed bool, ids map[Kind]int64) (Step, error) {
	on, onErr := resolve(a.On, ids)
	if onErr != nil && a.On.Created == KindLead {
		// The accepted Unsorted entry's client has no open deal: the contact takes it.
		on, onErr = resolve(CreatedBy(crm.EntityContact, KindContact), ids)
	}
	declined := onErr != nil && slices.ContainsFunc(p.Actions, func(x Action) bool { return x.Kind() == KindAccept })
	n := a.Note
	n.Entity, n.EntityID = on.Entity, on.ID
	_, ran, err := x.RunOnce(ctx, string(step.Kind), events.Once{
		Resumed: resumed && n.Uniq != "" && onErr == nil,
		Find: func() ([]byte, bool, error) {
			exists, err := e.w.CallNoteExists(ctx, n.Entity, n.EntityID, n.Uniq)
			return nil, exists, err
		},
		Do: func() ([]byte, error) {
			switch {
			case declined:
				step.Status = StepSkipped
				step.Reason = "the Unsorted entry was declined: no contact or deal to note the call on"
				return nil, nil
			case onErr != nil:
				return nil, onErr
			}
			return nil, e.w.AddCallNotes(ctx, []crm.CallNote{n})
		},
	})
	switch {
	case ran == events.RanEarlier:
		step.On = resolved(a.On, ids)
	case onErr == nil:
		step.On = on
	}
	if err != nil {
		return step, err
	}
	return ranOnce(step, ran, 0, ids), nil
}

// findLead looks on the contact for an open lead like the one planned, created since the
// plan: the trace of an attempt that wrote it but stopped before recording it.
func (e *Engine) findLead(ctx context.Context, contactID int64, want crm.NewLead, since time.Time) (int64, error) {
	c, err := e.dir.Contact(ctx, contactID)
	if errors.Is(err, crm.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("contact %d: %w", contactID, err)
	}
	if len(c.LeadIDs) == 0 {
		return 0, nil
	}
	leads, err := e.dir.Leads(ctx, c.LeadIDs)
	if err != nil && !errors.Is(err, crm.ErrNotFound) {
		return 0, fmt.Errorf("leads of contact %d: %w", contactID, err)
	}
	for _, l := range leads {
		if l.Open() && l.Name == want.Name && (want.PipelineID == 0 || l.PipelineID == want.PipelineID) &&
			!l.CreatedAt.Before(since) {
			return l.ID, nil
		}
	}
	return 0, nil
}

func (e *Engine) createTask(ctx context.Context, x events.Steps, step Step, a CreateTask, resumed bool, ids map[Kind]int64) (Step, error) {
	on, onErr := resolve(a.On, ids)
	// Another outcome for the number (on this instance or another) may have created a
	// task since this plan was made, or be creating one now: the window is claimed before
	// the task is written (or looked for), in one step with the check. A window held by
	// another outcome skips the task, recorded with no id.
	claimed := false
	taken := func() (bool, error) {
		if claimed {
			return false, nil
		}
		claimed = true
		now := e.Clock()
		till := a.Task.CompleteTill
		until, err := e.state.ClaimTask(ctx, a.Phone, step.Key, now, till, max(till.Sub(now), 0)+taskRecordSlack)
		if err != nil || !until.After(now) {
			return false, err
		}
		step.Status = StepSkipped
		step.Reason = fmt.Sprintf("%s got a call-back task until %s meanwhile", a.Phone, until.Format(time.RFC3339))
		return true, nil
	}
	t := a.Task
	t.Entity, t.EntityID = on.Entity, on.ID
	v, ran, err := x.RunOnce(ctx, string(step.Kind), events.Once{
		Resumed: resumed && onErr == nil,
		Find: func() ([]byte, bool, error) {
			if skip, err := taken(); skip || err != nil {
				return nil, skip, err
			}
			open, err := e.w.OpenTasks(ctx, on.Entity, on.ID)
			if err != nil {
				return nil, false, err
			}
			for _, o := range open {
				if o.TypeID == t.TypeID && o.Text == t.Text && o.CompleteTill.Unix() == t.CompleteTill.Unix() {
					return events.IDValue(o.ID), true, nil
				}
			}
			return nil, false, nil
		},
		Do: func() ([]byte, error) {
			if onErr != nil {
				return nil, onErr
			}
			if skip, err := taken(); skip || err != nil {
				return nil, err
			}
			got, err := e.w.CreateTasks(ctx, []crm.NewTask{t})
			if errors.Is(err, crm.ErrRejected) {
				// The CRM will never take this task: the window is not this outcome's to
				// hold. Other failures keep it for the retry, which claims it again as the
				// same action.
				if rerr := e.state.ReleaseTask(ctx, a.Phone, step.Key); rerr != nil {
					return nil, errors.Join(err, rerr)
				}
			}
			return createdID(got, err, "task")
		},
	})
	switch {
	case ran == events.RanEarlier:
		step.On = resolved(a.On, ids)
	case onErr == nil:
		step.On = on
	}
	if err != nil {
		return step, err
	}
	var id int64
	if len(v) > 0 { // none when skipped
		if id, err = events.ParseID(v); err != nil {
			return step, fmt.Errorf("stored task id: %w", err)
		}
	}
	return ranOnce(step, ran, id, ids), nil
}

// acceptUnsorted accepts the waiting entry and records the lead and contact it became. A
// manager may have decided on it first (or an attempt accepted it and lost the answer):
// then the client's contact has the number, and its open deal, if any, is the deal.
func (e *Engine) acceptUnsorted(ctx context.Context, x events.Steps, step Step, a AcceptUnsorted, ids map[Kind]int64) (Step, error) {
	entry, accepted, err := e.w.AcceptUnsorted(ctx, a.UID, a.User, a.StatusID)
	if err != nil {
		return step, err
	}
	lead, contact := entry.LeadID, entry.ContactID
	if !accepted {
		c, err := e.findClient(ctx, a.Phone)
		if err != nil {
			return step, err
		}
		lead, contact = 0, 0
		switch {
		case !c.Known:
			step.Status = StepSkipped
			step.Reason = fmt.Sprintf("Unsorted entry %s was declined meanwhile", a.UID)
		default:
			step.Status = StepAdopted
			step.Reason = fmt.Sprintf("Unsorted entry %s was accepted meanwhile", a.UID)
			contact, lead = c.ContactID, c.DealID
		}
	}
	if err := x.Record(ctx, string(step.Kind), fmt.Appendf(nil, "%d,%d", lead, contact)); err != nil {
		return step, err
	}
	setAccepted(ids, lead, contact)
	step.ID = lead
	if step.Status == "" {
		step.Status = StepDone
	}
	return step, nil
}

// acceptedIDs reads what acceptUnsorted recorded, "<lead>,<contact>" (0: none), into ids.
func acceptedIDs(val []byte, ids map[Kind]int64) error {
	l, c, ok := strings.Cut(string(val), ",")
	lead, err1 := strconv.ParseInt(l, 10, 64)
	contact, err2 := strconv.ParseInt(c, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return fmt.Errorf("stored Unsorted acceptance %q is not <lead>,<contact>", val)
	}
	setAccepted(ids, lead, contact)
	return nil
}

// setAccepted makes the accepted entry's lead and contact (0: none) stand for KindLead and
// KindContact.
func setAccepted(ids map[Kind]int64, lead, contact int64) {
	if lead != 0 {
		ids[KindLead] = lead
	}
	if contact != 0 {
		ids[KindContact] = contact
	}
}

// resolve turns a reference to a planned entity into its id.
func resolve(r Ref, ids map[Kind]int64) (Ref, error) {
	if r.Created == "" {
		return r, nil
	}
	id, ok := ids[r.Created]
	if !ok {
		return r, fmt.Errorf("the %s to attach to was not created (action %s did not run)", r.Entity, r.Created)
	}
	return Existing(r.Entity, id), nil
}

func resolved(r Ref, ids map[Kind]int64) Ref {
	if out, err := resolve(r, ids); err == nil {
		return out
	}
	return r
}
