// Package clicktocall places calls a manager asks for from the CRM: the manager's own
// phones ring first, and once one answers Asterisk dials the client through the outgoing
// context. It checks the request (a known manager with phones, a real number, no other
// call of theirs in progress), hands the call to the PBX and keeps its state for whoever
// asks. The call itself is an ordinary outgoing call from the manager's phone, so the
// call observer records it like any other.
package clicktocall

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/crmlink/crmlink/crm"
)

// State is where a call is.
type State string

const (
	RingingManager State = "ringing_manager" // the manager's phones ring
	RingingClient  State = "ringing_client"  // the manager answered; the client's line rings
	Talking        State = "talking"         // the client answered
	Ended          State = "ended"           // see the Cause
)

// Cause says how a call ended.
type Cause string

const (
	Completed          Cause = "completed"           // the manager and the client talked
	ManagerNoAnswer    Cause = "manager_no_answer"   // no phone of the manager answered within the ring timeout; the client was never dialled
	ManagerBusy        Cause = "manager_busy"        // the manager's phones declined the call
	ManagerUnreachable Cause = "manager_unreachable" // no phone of the manager could be rung (not registered)
	ClientBusy         Cause = "client_busy"         // the client's line was busy or declined
	ClientNoAnswer     Cause = "client_no_answer"    // the client did not answer
	ClientUnreachable  Cause = "client_unreachable"  // the client's number could not be reached (congestion, unavailable)
	Cancelled          Cause = "cancelled"           // the manager hung up before the client answered
	Failed             Cause = "failed"              // Asterisk refused or lost the call
)

// Call is one click-to-call request and where it is now.
type Call struct {
	ID      string     `json:"id"`
	Manager crm.UserID `json:"manager"`
	Phone   crm.Phone  `json:"phone"` // the client, E.164
	State   State      `json:"state"`
	Cause   Cause      `json:"cause,omitempty"`
	Created time.Time  `json:"created"`
	Ended   time.Time  `json:"ended,omitzero"`
}

// Manager is who may be called back: their phones and the number the client sees.
type Manager struct {
	User      crm.UserID
	Endpoints []string // Asterisk dial strings, all rung at once
	CallerID  string   // presented to the client; empty: what the outgoing context sets
}

// Attempt is what the PBX places: ring Endpoints, and on an answer dial Dial through the
// outgoing context presenting CallerID. The PBX reports progress with Update.
type Attempt struct {
	ID        string
	Manager   crm.UserID
	Endpoints []string
	Dial      string // the client's number as the outgoing context dials it
	CallerID  string
	Client    crm.Phone
	// Update records a state; Ended with a cause is final.
	Update func(State, Cause)
}

// PBX places attempts; Place returns once the manager's phones ring (or failed to).
type PBX interface {
	Place(ctx context.Context, a Attempt) error
}

// Refusals of a request, each with the reason the caller is told.
var (
	ErrBadRequest     = errors.New("bad request")
	ErrUnknownManager = errors.New("unknown manager")
	ErrNoPhones       = errors.New("manager has no phones")
	ErrInProgress     = errors.New("call in progress")
	ErrUnavailable    = errors.New("cannot place calls now")
)

// Options configure a Service.
type Options struct {
	// Manager finds a manager by CRM user (the configuration in effect).
	Manager func(crm.UserID) (Manager, bool)
	Region  string // for numbers without a country code, e.g. RU
	PBX     PBX
	// Keep is how long an ended call's state can still be asked for.
	Keep time.Duration
	Now  func() time.Time
}

// Service takes click-to-call requests.
type Service struct {
	opts   Options
	mu     sync.Mutex
	calls  map[string]*Call
	active map[crm.UserID]string // manager -> the call in progress
}

// New builds a service.
func New(opts Options) *Service {
	if opts.Keep <= 0 {
		opts.Keep = time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{opts: opts, calls: map[string]*Call{}, active: map[crm.UserID]string{}}
}

// maxNumberLen bounds what is parsed as a phone number.
const maxNumberLen = 64

// reNumberChars is what people write numbers with.
var reNumberChars = regexp.MustCompile(`^[0-9+()\-. ]+$`)

// Place checks a request and places the call; the returned call rings the manager.
// Errors wrap one of the Err* refusals with the reason.
func (s *Service) Place(ctx context.Context, manager crm.UserID, number string) (Call, error) {
	m, known := s.opts.Manager(manager)
	switch {
	case manager <= 0:
		return Call{}, fmt.Errorf("%w: manager must be the amoCRM user id, a positive number", ErrBadRequest)
	case !known:
		return Call{}, fmt.Errorf("%w: amoCRM user %d has no phones here: not listed under crmlink's managers", ErrUnknownManager, manager)
	case len(m.Endpoints) == 0:
		return Call{}, fmt.Errorf("%w: amoCRM user %d has no endpoints in crmlink's managers", ErrNoPhones, manager)
	}
	client, dial, err := s.parse(number)
	if err != nil {
		return Call{}, err
	}
	s.mu.Lock()
	s.forgetOld()
	if id, busy := s.active[manager]; busy {
		s.mu.Unlock()
		return Call{}, fmt.Errorf("%w: manager %d already has call %s in progress", ErrInProgress, manager, id)
	}
	c := &Call{ID: newID(), Manager: manager, Phone: client, State: RingingManager, Created: s.opts.Now()}
	s.calls[c.ID] = c
	s.active[manager] = c.ID
	s.mu.Unlock()

	a := Attempt{ID: c.ID, Manager: manager, Endpoints: m.Endpoints, Dial: dial, CallerID: m.CallerID, Client: client,
		Update: func(st State, cause Cause) { s.update(c.ID, st, cause) }}
	if err := s.opts.PBX.Place(ctx, a); err != nil {
		s.update(c.ID, Ended, Failed)
		return Call{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	got, _ := s.Call(c.ID)
	return got, nil
}

// parse reads the client's number: its E.164 form and what the outgoing context dials
// (national digits for a number of the region, as office phones dial; +E.164 otherwise).
func (s *Service) parse(number string) (crm.Phone, string, error) {
	n := strings.TrimSpace(number)
	if n == "" || len(n) > maxNumberLen || !reNumberChars.MatchString(n) {
		return "", "", fmt.Errorf("%w: phone %q is not a phone number (digits, spaces, + ( ) - . only)", ErrBadRequest, clip(number))
	}
	p, err := crm.ParsePhone(n, s.opts.Region)
	if err != nil {
		return "", "", fmt.Errorf("%w: phone %q is not a phone number in region %s", ErrBadRequest, clip(number), s.opts.Region)
	}
	pn, err := phonenumbers.Parse(string(p), "")
	if err != nil || !phonenumbers.IsValidNumber(pn) {
		return "", "", fmt.Errorf("%w: phone %q is not a valid number", ErrBadRequest, clip(number))
	}
	if phonenumbers.GetRegionCodeForNumber(pn) == s.opts.Region {
		return p, phonenumbers.NormalizeDigitsOnly(phonenumbers.Format(pn, phonenumbers.NATIONAL)), nil
	}
	return p, string(p), nil
}

// clip keeps an echoed input short.
func clip(s string) string {
	if len(s) > maxNumberLen {
		return s[:maxNumberLen] + "..."
	}
	return s
}

// update records a call's progress; an ended call stays ended.
func (s *Service) update(id string, st State, cause Cause) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls[id]
	if c == nil || c.State == Ended {
		return
	}
	c.State = st
	if st == Ended {
		c.Cause, c.Ended = cause, s.opts.Now()
		if s.active[c.Manager] == id {
			delete(s.active, c.Manager)
		}
	}
}

// Call returns a call's state.
func (s *Service) Call(id string) (Call, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls[id]
	if c == nil {
		return Call{}, false
	}
	return *c, true
}

// forgetOld drops calls that ended longer than Keep ago (s.mu held).
func (s *Service) forgetOld() {
	cut := s.opts.Now().Add(-s.opts.Keep)
	for id, c := range s.calls {
		if c.State == Ended && c.Ended.Before(cut) {
			delete(s.calls, id)
		}
	}
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
