package dialplan

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/crmlink/crmlink/routing"
)

func TestForDial(t *testing.T) {
	tests := []struct {
		name     string
		d        routing.Decision
		want     Values
		problems int
	}{
		{
			name: "routed",
			d:    routing.Decision{Result: routing.Routed, Owner: 42, Source: routing.SourceIndex, Targets: []routing.Target{{Endpoint: "PJSIP/101"}, {Endpoint: "SIP/102"}}},
			want: Values{Result: "ROUTED", Owner: "42", Source: "index", Dial: "PJSIP/101&SIP/102", RingTimeout: "20"},
		},
		{
			name:     "bad targets dropped, good ones kept",
			d:        routing.Decision{Result: routing.Routed, Owner: 42, Targets: []routing.Target{{Endpoint: "PJSIP/101 x"}, {Endpoint: "PJSIP/102"}, {Endpoint: "101"}}},
			want:     Values{Result: "ROUTED", Owner: "42", Dial: "PJSIP/102", RingTimeout: "20"},
			problems: 2,
		},
		{
			name:     "routed without targets",
			d:        routing.Decision{Result: routing.Routed, Owner: 42},
			want:     Values{Result: "FALLBACK", Reason: "no_owner", Owner: "42", RingTimeout: "20"},
			problems: 1,
		},
		{
			name:     "zero decision",
			d:        routing.Decision{},
			want:     Values{Result: "FALLBACK", RingTimeout: "20"},
			problems: 1,
		},
		{
			name:     "reason with a newline",
			d:        routing.Decision{Result: routing.Fallback, Reason: "timeout\nHANGUP", Owner: -1},
			want:     Values{Result: "FALLBACK", RingTimeout: "20"},
			problems: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ForDial(tt.d, 20*time.Second)
			assert.Len(t, got.Problems, tt.problems, "%q", got.Problems)
			got.Problems = nil
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestRingSeconds(t *testing.T) {
	assert.Equal(t, 20, ringSeconds(20*time.Second))
	assert.Equal(t, 2, ringSeconds(1001*time.Millisecond))
	assert.Equal(t, 1, ringSeconds(time.Nanosecond))
}

func TestValidDialTarget(t *testing.T) {
	for _, ok := range []string{"PJSIP/101", "PJSIP/79161234567@trunk", "SIP/+74951234567", "Local/101@crmlink-owner/n", "PJSIP/*77#", "IAX2/user:secret@host"} {
		assert.True(t, validDialTarget(ok), ok)
	}
	for _, bad := range []string{"", "101", "/101", "PJSIP/", "PJ SIP/101", "PJSIP/10 1", "PJSIP/101,30,tT", "PJSIP/101&PJSIP/102",
		`PJSIP/"101"`, "PJSIP/101\n", "PJSIP/${EVIL}", "PJSIP/101)", "PJSIP/1;x", strings.Repeat("a", maxTargetLength) + "/1", "PJSIP/é"} {
		assert.False(t, validDialTarget(bad), bad)
	}
}
