package bench

import (
	"math"
	"slices"
)

// percentile is the nearest-rank percentile (p in 0..100) of values; NaN for none.
func percentile(values []float64, p float64) float64 {
	if len(values) == 0 {
		return math.NaN()
	}
	s := slices.Clone(values)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

// answerRate is how many answers per second came back, over the middle 80% of them (the
// first and last answers of a short step carry its start and end, not its pace): what the
// path kept up with, against the offered rate. A path that falls behind spaces its answers
// at the rate it can serve, whatever its latency.
func answerRate(at []float64) float64 {
	if len(at) < 2 {
		return 0
	}
	s := slices.Clone(at)
	slices.Sort(s)
	lo, hi := len(s)/10, len(s)-1-len(s)/10
	if hi-lo < 1 {
		lo, hi = 0, len(s)-1
	}
	if s[hi] <= s[lo] {
		return 0
	}
	return float64(hi-lo) / ((s[hi] - s[lo]) / 1000)
}

// num makes NaN and infinities JSON-safe (0) and rounds to three decimals.
func num(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return math.Round(v*1000) / 1000
}
