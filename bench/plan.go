package bench

import (
	"math"
	"time"
)

// Plan is how long and how hard each path is driven.
type Plan struct {
	Fixed     []int         // the fixed rates, calls/s, in order
	FixedFor  time.Duration // how long each fixed rate is offered
	RampFor   time.Duration // how long each step of the search is offered
	RampSteps int           // at most this many search steps per path
	MinCalls  int           // a step offers at least this many calls (low rates run longer)
	MaxStep   time.Duration // ... but never longer than this
	Growth    float64       // the search grows the rate by this factor while it passes
	HoldMS    int           // how long each answered call is held before the caller hangs up
	ColdCalls int           // cold numbers in the CRM: enough for every step of a cold path
}

// FullPlan is `make bench`: four fixed rates of four seconds, up to five search steps.
func FullPlan() Plan {
	return Plan{Fixed: []int{20, 50, 100, 200}, FixedFor: 4 * time.Second, RampFor: 4 * time.Second, RampSteps: 5,
		MinCalls: 30, MaxStep: 15 * time.Second, Growth: 1.4, HoldMS: 1000, ColdCalls: 2600}
}

// QuickPlan is `make bench BENCH_QUICK=1`: two fixed rates of three seconds, two steps.
func QuickPlan() Plan {
	return Plan{Fixed: []int{20, 100}, FixedFor: 3 * time.Second, RampFor: 3 * time.Second, RampSteps: 2,
		MinCalls: 20, MaxStep: 8 * time.Second, Growth: 1.4, HoldMS: 500, ColdCalls: 700}
}

// calls is how many calls a step at rate offers.
func (p Plan) calls(rate int, d time.Duration) int {
	n := int(math.Round(float64(rate) * d.Seconds()))
	n = max(n, p.MinCalls)
	if cap := int(float64(rate) * p.MaxStep.Seconds()); n > cap {
		n = max(cap, 1)
	}
	return n
}

// search finds the highest rate that passes, starting from the fixed rates' outcomes
// (rate -> passed), within cap and a step budget (the plan's, or a smaller one the path
// asks for; 0 takes the plan's). try runs one step. It returns
// the highest passing rate seen (0 when none passed).
//
//   - every fixed rate passed: grow by Growth until a step fails, then halve the gap;
//   - none passed: halve the rate until one passes, then halve the gap upwards;
//   - some passed: halve the gap between the highest pass and the lowest fail above it.
//
// Gaps stop being halved below a tenth of the passing rate.
func (p Plan) search(fixed map[int]bool, rateCap, budget int, growth float64, try func(rate int) bool) int {
	if growth <= 1 {
		growth = p.Growth
	}
	if budget <= 0 || budget > p.RampSteps {
		budget = p.RampSteps
	}
	lo, hi := 0, 0 // highest pass, lowest fail above it (0: none)
	for r, ok := range fixed {
		if ok && r > lo {
			lo = r
		}
	}
	for r, ok := range fixed {
		if !ok && r > lo && (hi == 0 || r < hi) {
			hi = r
		}
	}
	steps := 0
	step := func(r int) bool {
		steps++
		ok := try(r)
		if ok {
			lo = max(lo, r)
		} else if hi == 0 || r < hi {
			hi = r
		}
		return ok
	}
	switch {
	case lo == 0 && hi > 0:
		for r := hi / 2; r >= 1 && steps < budget; r /= 2 {
			if step(r) {
				break
			}
		}
	case hi == 0 && lo > 0:
		for steps < budget {
			r := roundRate(float64(lo) * growth)
			if r > rateCap {
				break
			}
			if !step(r) {
				break
			}
		}
	}
	for steps < budget && lo > 0 && hi > 0 && hi-lo > max(1, lo/10) {
		step((lo + hi) / 2)
	}
	return lo
}

// roundRate rounds a rate to a tidy number: units below 20, fives below 100, tens above.
func roundRate(r float64) int {
	switch {
	case r < 20:
		return int(math.Round(r))
	case r < 100:
		return int(math.Round(r/5) * 5)
	default:
		return int(math.Round(r/10) * 10)
	}
}
