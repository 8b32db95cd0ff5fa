package rules_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmlink/crmlink/crm"
	"github.com/crmlink/crmlink/routing"
	"github.com/crmlink/crmlink/routing/rules"
)

// TestPlan: plans are values; later actions refer to what earlier ones create.
func TestPlan(t *testing.T) {
	missed := incoming("p1", false)
	tests := []struct {
		name  string
		setup func(e *env)
		o     routing.CallOutcome
		want  []rules.Action
	}{
		{
			name: "new caller, missed",
			o:    missed,
			want: []rules.Action{
				rules.CreateContact{Contact: crm.NewContact{Name: string(client), Phones: []crm.Phone{client},
					Responsible: firstOperator, RequestID: "call:p1:contact"}},
				rules.CreateLead{
					Lead:    crm.NewLead{Name: callFrom, Responsible: firstOperator, RequestID: "call:p1:lead"},
					Contact: rules.CreatedBy(crm.EntityContact, rules.KindContact),
				},
				rules.CreateTask{
					Task: crm.NewTask{Text: missedText(missed), TypeID: crm.TaskTypeCall, Responsible: firstOperator,
						CreatedBy: firstOperator, CompleteTill: t0.Add(time.Hour), RequestID: "call:p1:task"},
					On:    rules.CreatedBy(crm.EntityLead, rules.KindLead),
					Phone: client,
				},
				rules.AddCallNote{
					Note: crm.CallNote{Direction: crm.CallIn, Uniq: "p1", Phone: client, Status: crm.CallStatusNotReached,
						Result: rules.ResultMissed, Source: "crmlink", Responsible: firstOperator},
					On: rules.CreatedBy(crm.EntityLead, rules.KindLead),
				},
			},
		},
		{
			name:  "known client with an open deal, missed",
			setup: func(e *env) { e.openLead(e.knownClient()) },
			o:     missed,
			want: []rules.Action{
				rules.CreateTask{
					Task: crm.NewTask{Text: missedText(missed), TypeID: crm.TaskTypeCall, Responsible: contactOwner,
						CreatedBy: firstOperator, CompleteTill: t0.Add(time.Hour), RequestID: "call:p1:task"},
					On:    rules.Existing(crm.EntityLead, 601),
					Phone: client,
				},
				rules.AddCallNote{
					Note: crm.CallNote{Direction: crm.CallIn, Uniq: "p1", Phone: client, Status: crm.CallStatusNotReached,
						Result: rules.ResultMissed, Source: "crmlink", Responsible: firstOperator},
					On: rules.Existing(crm.EntityLead, 601),
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, rules.Defaults())
			if tt.setup != nil {
				tt.setup(e)
			}
			got, err := e.eng.Plan(context.Background(), tt.o)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			for _, a := range got {
				assert.Equal(t, "call:p1:"+string(a.Kind()), rules.ActionKey("p1", a.Kind()))
			}
		})
	}
}

// BenchmarkPlanKnownClient: planning a missed call of a known client with an open deal
// (contact search, deals, task window in State and CRM) against the in-memory CRM: the
// engine's own cost per event, CRM latency excluded.
func BenchmarkPlanKnownClient(b *testing.B) {
	e := newEnv(b, rules.Defaults())
	e.openLead(e.knownClient())
	ctx := context.Background()
	outcomes := make([]routing.CallOutcome, 1024)
	for i := range outcomes {
		outcomes[i] = incoming(fmt.Sprintf("b%d", i), i%2 == 0)
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		acts, err := e.eng.Plan(ctx, outcomes[i%len(outcomes)])
		if err != nil || len(acts) == 0 {
			b.Fatalf("plan: %v, %d actions", err, len(acts))
		}
		i++
	}
}
