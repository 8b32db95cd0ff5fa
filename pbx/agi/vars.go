package agi

import (
	"strconv"
	"strings"
	"time"

	"github.com/crmlink/crmlink/routing"
)

// Channel variable names: the contract with the dialplan (see the package doc).
const (
	VarResult      = "CRMLINK_RESULT"
	VarReason      = "CRMLINK_REASON"
	VarOwner       = "CRMLINK_OWNER"
	VarSource      = "CRMLINK_SOURCE"
	VarDial        = "CRMLINK_DIAL"
	VarRingTimeout = "CRMLINK_RING_TIMEOUT"
)

const (
	maxTargets      = 16
	maxTargetLength = 128
	maxTokenLength  = 32
)

type variable struct {
	name, value string
}

// answer is a decision reduced to what may be sent to Asterisk, plus what was wrong with it.
type answer struct {
	result, reason, owner, source, dial, ring string
	problems                                  []string
}

// vars lists the SET VARIABLE commands in the order they are sent. CRMLINK_RESULT comes last
// so that a half-finished exchange never leaves ROUTED without its dial string.
func (a answer) vars() []variable {
	return []variable{
		{VarReason, a.reason},
		{VarOwner, a.owner},
		{VarSource, a.source},
		{VarDial, a.dial},
		{VarRingTimeout, a.ring},
		{VarResult, a.result},
	}
}

// answerFor turns a decision into the values for the dialplan, dropping what is unsafe.
func answerFor(d routing.Decision, ring time.Duration) answer {
	var a answer
	reason := string(d.Reason)
	if !validToken(reason) {
		a.problems = append(a.problems, "reason "+strconv.Quote(clip(reason))+" is not a token; sent empty")
		reason = ""
	}
	source := string(d.Source)
	if !validToken(source) {
		a.problems = append(a.problems, "source "+strconv.Quote(clip(source))+" is not a token; sent empty")
		source = ""
	}
	owner := ""
	switch {
	case d.Owner > 0:
		owner = strconv.FormatInt(int64(d.Owner), 10)
	case d.Owner < 0:
		a.problems = append(a.problems, "negative owner id; sent empty")
	}

	result := routing.Fallback
	var dial []string
	if d.Result == routing.Routed {
		for i, t := range d.Targets {
			if i >= maxTargets {
				a.problems = append(a.problems, "more than "+strconv.Itoa(maxTargets)+" targets; the rest dropped")
				break
			}
			if !validDialTarget(t.Endpoint) {
				a.problems = append(a.problems, "dial target "+strconv.Quote(clip(t.Endpoint))+" is not Tech/resource; dropped")
				continue
			}
			dial = append(dial, t.Endpoint)
		}
		if len(dial) > 0 {
			result = routing.Routed
		} else {
			a.problems = append(a.problems, "routed without a usable dial target; falling back")
			reason = string(routing.ReasonNoOwner)
		}
	} else if d.Result != routing.Fallback {
		a.problems = append(a.problems, "result "+strconv.Quote(clip(string(d.Result)))+" is neither ROUTED nor FALLBACK; falling back")
	}

	a.result, a.reason, a.owner, a.source = string(result), reason, owner, source
	a.dial = strings.Join(dial, "&")
	a.ring = strconv.Itoa(ringSeconds(ring))
	return a
}

// ringSeconds rounds up: Dial's timeout is whole seconds and never shorter than asked.
func ringSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// validToken accepts the enum-like values (reasons, sources): [a-z0-9_.-], bounded. Empty is valid.
func validToken(s string) bool {
	if len(s) > maxTokenLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// validDialTarget accepts "Tech/resource" where Tech is a channel driver name and resource
// holds only characters that mean nothing to Dial() or to the AGI command line: no spaces,
// quotes, backslashes, commas (Dial's argument separator), "&" (our target separator),
// parentheses, "$" or control characters.
func validDialTarget(s string) bool {
	if len(s) == 0 || len(s) > maxTargetLength {
		return false
	}
	tech, resource, ok := strings.Cut(s, "/")
	if !ok || tech == "" || resource == "" {
		return false
	}
	for i := 0; i < len(tech); i++ {
		c := tech[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	for i := 0; i < len(resource); i++ {
		c := resource[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
			strings.IndexByte("._-+@:*#/", c) >= 0) {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
