package events_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/events"
	"github.com/crmlink/crmlink/internal/eventstest"
)

// TestRunOnceAfterACrash: a step whose write succeeded but whose record was lost is looked
// for (Find) on the next delivery, and what Find finds is recorded instead of a second
// write; a first delivery never looks (the CRM requests a lookup costs are scarce), nor a
// delivery that can tell the step did not begin.
func TestRunOnceAfterACrash(t *testing.T) {
	cases := []struct {
		name string
		// resumed: what the caller's plan says on the second delivery; mark: Once.Mark.
		resumed, mark bool
		// crash: the first delivery wrote and lost the record; else it failed before
		// writing (the CRM refused, a timeout before the request left).
		crash bool
		// wantFinds on the first and second delivery; wantCreates in all.
		wantFinds   [2]int
		wantCreates int
		wantRan     events.Ran
	}{
		{name: "plan resumed, write lost", resumed: true, crash: true, wantFinds: [2]int{0, 1}, wantCreates: 1, wantRan: events.RanAdopted},
		{name: "plan resumed, write failed", resumed: true, wantFinds: [2]int{0, 1}, wantCreates: 1, wantRan: events.RanNow},
		{name: "begun mark, write lost", mark: true, crash: true, wantFinds: [2]int{0, 1}, wantCreates: 1, wantRan: events.RanAdopted},
		{name: "begun mark, write failed", mark: true, wantFinds: [2]int{0, 1}, wantCreates: 1, wantRan: events.RanNow},
		{name: "no signal: a second write (what Resumed and Mark prevent)", crash: true, wantFinds: [2]int{0, 0}, wantCreates: 2, wantRan: events.RanNow},
	}
	for _, st := range stores {
		for _, tc := range cases {
			t.Run(st.name+"/"+tc.name, func(t *testing.T) {
				ctx := context.Background()
				state := st.new(t)
				var created []int64 // the CRM
				finds := 0
				once := func(resumed bool, fail bool) events.Once {
					return events.Once{Resumed: resumed, Mark: tc.mark,
						Find: func() ([]byte, bool, error) {
							finds++
							if len(created) == 0 {
								return nil, false, nil
							}
							return events.IDValue(created[len(created)-1]), true, nil
						},
						Do: func() ([]byte, error) {
							if fail {
								return nil, errors.New("CRM unavailable")
							}
							created = append(created, 7000+int64(len(created)))
							return events.IDValue(created[len(created)-1]), nil
						}}
				}
				first := events.NewSteps(&eventstest.KilledAfter{State: state, Step: "contact"}, "leads:jivo:c1", time.Hour)
				_, _, err := first.RunOnce(ctx, "contact", once(false, !tc.crash))
				require.Error(t, err)
				assert.Equal(t, tc.wantFinds[0], finds, "finds on the first delivery")

				again := events.NewSteps(state, "leads:jivo:c1", time.Hour)
				v, ran, err := again.RunOnce(ctx, "contact", once(tc.resumed, false))
				require.NoError(t, err)
				assert.Equal(t, tc.wantFinds[1], finds-tc.wantFinds[0], "finds on the second delivery")
				assert.Equal(t, tc.wantRan, ran)
				assert.Len(t, created, tc.wantCreates, "entities in the CRM")
				id, err := events.ParseID(v)
				require.NoError(t, err)
				assert.Equal(t, created[len(created)-1], id, "the recorded id is the entity's")

				_, ran, err = again.RunOnce(ctx, "contact", once(true, false))
				require.NoError(t, err)
				assert.Equal(t, events.RanEarlier, ran, "a third delivery finds the record")
				assert.Len(t, created, tc.wantCreates)
			})
		}
	}
}
