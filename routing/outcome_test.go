package routing_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/crmlink/crmlink/routing"
)

func TestTalkSummary(t *testing.T) {
	tests := []struct {
		name    string
		talkers []routing.Talker
		want    string
	}{
		{"nobody talked", nil, ""},
		{"a manager", []routing.Talker{{Endpoint: "PJSIP/102", User: 2, Name: "Boris", Talk: 61400 * time.Millisecond}}, "Talked: Boris 1:01"},
		{"an office phone of no manager's, then a manager", []routing.Talker{{Endpoint: "PJSIP/100", Talk: 9 * time.Second},
			{Endpoint: "PJSIP/101", User: 1, Name: "Anna", Talk: 3725 * time.Second}}, "Talked: PJSIP/100 0:09, Anna 62:05"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, routing.CallOutcome{Talkers: tc.talkers}.TalkSummary())
		})
	}
}
