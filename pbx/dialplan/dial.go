package dialplan

import (
	"strconv"
	"strings"
	"time"

	"github.com/crmlink/crmlink/routing"
)

const (
	maxTargets      = 16
	maxTargetLength = 128
)

// ForDial is the decision for a dialplan that dials the owner itself (FastAGI; the ARI
// controller with ringing "dialplan"): Of plus CRMLINK_DIAL, the owner's phones joined with
// "&", and CRMLINK_RING_TIMEOUT, dropping what is unsafe: a dial target that is not
// Tech/resource is not sent.
func ForDial(d routing.Decision, ring time.Duration) Values {
	a := Of(d)
	if a.Result == string(routing.Routed) {
		var dial []string
		for i, t := range d.Targets {
			if i >= maxTargets {
				a.Problems = append(a.Problems, "more than "+strconv.Itoa(maxTargets)+" targets; the rest dropped")
				break
			}
			if !validDialTarget(t.Endpoint) {
				a.Problems = append(a.Problems, "dial target "+Quote(t.Endpoint)+" is not Tech/resource; dropped")
				continue
			}
			dial = append(dial, t.Endpoint)
		}
		if len(dial) == 0 {
			a.NoTarget()
		}
		a.Dial = strings.Join(dial, "&")
	}
	a.RingTimeout = strconv.Itoa(ringSeconds(ring))
	return a
}

// ringSeconds rounds up: Dial's timeout is whole seconds and never shorter than asked.
func ringSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
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
