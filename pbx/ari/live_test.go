package ari

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/crmlink/crmlink/board"
	"github.com/crmlink/crmlink/crm"
)

// boardLog records what a call source tells the board.
type boardLog []string

func (b *boardLog) Ringing(id string, r board.Ring) {
	*b = append(*b, "ringing "+id+" "+string(r.Direction)+" "+r.Caller+" "+string(r.Decision.Result)+" "+r.Endpoints[0])
}
func (b *boardLog) Answered(id, endpoint string) { *b = append(*b, "answered "+id+" "+endpoint) }
func (b *boardLog) Ended(id string)              { *b = append(*b, "ended "+id) }

func TestObserverShowsCallsOnTheBoard(t *testing.T) {
	managers := map[string]crm.UserID{"PJSIP/101": 1001, "PJSIP/102": 1002}
	anna := ch("P", "PJSIP/101-00000002", "101", "s")
	for _, c := range []struct {
		name   string
		events []obsEvent
		want   []string
	}{
		{"a FastAGI-routed call rings, is answered, ends",
			twoPartyCall(ch("L", "PJSIP/trunk-00000001", "84951000001", "701", "CRMLINK_RESULT", "ROUTED", "CRMLINK_OWNER", "1001"), anna, "101", 1500),
			[]string{"ringing L incoming 84951000001 ROUTED PJSIP/101", "answered L PJSIP/101", "ended L"}},
		{"a manager calling out is the one on the call",
			twoPartyCall(ch("L", "PJSIP/101-00000001", "101", "989161234567"), ch("P", "PJSIP/trunk-00000002", "", "s"), "89161234567@trunk", 1500),
			[]string{"ringing L outgoing 101  PJSIP/101", "answered L PJSIP/101", "ended L"}},
		{"an internal call is not shown",
			twoPartyCall(ch("L", "PJSIP/101-00000001", "101", "102"), ch("P", "PJSIP/102-00000002", "102", "s"), "102", 1500),
			[]string{"ended L"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr := newTracker(managers, nil)
			var got boardLog
			for _, e := range c.events {
				tr.show(e, &got)
				tr.feed(e)
			}
			assert.Equal(t, c.want, []string(got))
		})
	}
}
