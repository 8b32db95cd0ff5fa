package bench

import (
	"fmt"
	"html"
	"math"
	"slices"
	"strings"
)

// SVG charts INVITE-to-answer latency against the offered rate for every path: p50 on the
// left, p99 on the right, both axes logarithmic (rates span 1 to 1000s of calls/s, latency
// under a millisecond to a second). Filled markers are sustained steps, hollow ones not.
func (rep *Report) SVG() string {
	const (
		panelW, panelH = 430, 300
		left, top      = 60, 50
		gap            = 70
		legendRowH     = 18
	)
	palette := []string{"#222222", "#1f77b4", "#2ca02c", "#17becf", "#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"}

	// Axis ranges over every step of every path.
	minR, maxR, maxL := math.Inf(1), 0.0, 1.0
	for _, p := range rep.Paths {
		for _, s := range p.Steps {
			if s.Successful == 0 {
				continue
			}
			minR, maxR = math.Min(minR, float64(s.Rate)), math.Max(maxR, float64(s.Rate))
			maxL = math.Max(maxL, math.Max(s.P99, s.P50))
		}
	}
	if maxR == 0 {
		minR, maxR = 1, 1000
	}
	loR, hiR := niceFloor(minR), niceCeil(maxR)
	if hiR <= loR {
		hiR = loR * 10
	}
	loL, hiL := 0.5, niceCeil(maxL) // 0 ms (under sipp's 1 ms resolution) is drawn at 0.5
	x := func(r float64) float64 { return logPos(r, loR, hiR) * panelW }
	y := func(l float64) float64 { return panelH - logPos(math.Max(l, loL), loL, hiL)*panelH }

	legendRows := (len(rep.Paths) + 1) / 2
	width := left + 2*panelW + gap + 30
	height := top + panelH + 60 + legendRows*legendRowH + 20
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	title := fmt.Sprintf("crmlink call setup: INVITE to answer against offered rate (%s, %d cores, %s)",
		rep.Started.UTC().Format("2006-01-02"), rep.Machine.Cores, rep.Machine.Asterisk)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="13" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(title))

	for pi, panel := range []struct {
		name string
		val  func(Step) float64
	}{{"p50", func(s Step) float64 { return s.P50 }}, {"p99", func(s Step) float64 { return s.P99 }}} {
		ox := float64(left + pi*(panelW+gap))
		oy := float64(top)
		fmt.Fprintf(&b, `<g transform="translate(%.0f,%.0f)">`+"\n", ox, oy)
		fmt.Fprintf(&b, `<text x="%d" y="-8" font-size="12" font-weight="bold">%s latency, ms</text>`+"\n", 0, panel.name)
		// Grid and ticks.
		for _, v := range ticks(loR, hiR) {
			px := x(v)
			fmt.Fprintf(&b, `<line x1="%.1f" y1="0" x2="%.1f" y2="%d" stroke="#e4e4e4"/>`+"\n", px, px, panelH)
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", px, panelH+14, tick(v))
		}
		for _, v := range append([]float64{loL}, ticks(1, hiL)...) {
			py := y(v)
			label := tick(v)
			if v == loL {
				label = "&lt;1"
			}
			fmt.Fprintf(&b, `<line x1="0" y1="%.1f" x2="%d" y2="%.1f" stroke="#e4e4e4"/>`+"\n", py, panelW, py)
			fmt.Fprintf(&b, `<text x="-6" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", py, label)
		}
		fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="none" stroke="#888"/>`+"\n", panelW, panelH)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">offered calls/s</text>`+"\n", panelW/2, panelH+30)
		if maxP99ms >= loL && maxP99ms <= hiL {
			fmt.Fprintf(&b, `<line x1="0" y1="%.1f" x2="%d" y2="%.1f" stroke="#d62728" stroke-dasharray="4 3" stroke-width="0.8"/>`+"\n", y(maxP99ms), panelW, y(maxP99ms))
		}
		for i, p := range rep.Paths {
			color := palette[i%len(palette)]
			var pts []string
			steps := sortedByRate(p.Steps)
			for _, s := range steps {
				if s.Successful == 0 {
					continue
				}
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(float64(s.Rate)), y(panel.val(s))))
			}
			if len(pts) > 1 {
				fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.6" points="%s"/>`+"\n", color, strings.Join(pts, " "))
			}
			for _, s := range steps {
				if s.Successful == 0 {
					continue
				}
				fill := color
				if !s.Pass {
					fill = "white"
				}
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s" stroke="%s"><title>%s %d/s: %s ms</title></circle>`+"\n",
					x(float64(s.Rate)), y(panel.val(s)), fill, color, html.EscapeString(p.Name), s.Rate, ms(panel.val(s)))
			}
		}
		b.WriteString("</g>\n")
	}
	// Legend.
	ly := top + panelH + 50
	for i, p := range rep.Paths {
		lx := left + (i%2)*(panelW+gap)
		yy := ly + (i/2)*legendRowH
		color := palette[i%len(palette)]
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>`, lx, yy-4, lx+22, yy-4, color)
		fmt.Fprintf(&b, `<circle cx="%d" cy="%d" r="3" fill="%s"/>`, lx+11, yy-4, color)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s: %s (max %d/s)</text>`+"\n", lx+28, yy, html.EscapeString(p.Name), html.EscapeString(p.Title), p.MaxRate)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555">hollow: rate not sustained; dashed red: the 1 s p99 bound</text>`+"\n", left, ly+legendRows*legendRowH+6)
	b.WriteString("</svg>\n")
	return b.String()
}

func sortedByRate(steps []Step) []Step {
	out := slices.Clone(steps)
	slices.SortStableFunc(out, func(a, b Step) int { return a.Rate - b.Rate })
	return out
}

// ticks are the 1, 2, 5 multiples of powers of ten from lo to hi.
func ticks(lo, hi float64) []float64 {
	var out []float64
	for d := decadeFloor(lo); d <= hi*1.0001; d *= 10 {
		for _, k := range []float64{1, 2, 5} {
			if v := d * k; v >= lo*0.9999 && v <= hi*1.0001 {
				out = append(out, v)
			}
		}
	}
	return out
}

func logPos(v, lo, hi float64) float64 {
	v = math.Min(math.Max(v, lo), hi)
	return (math.Log10(v) - math.Log10(lo)) / (math.Log10(hi) - math.Log10(lo))
}

// niceCeil and niceFloor round to the 1, 2, 5 series: the axis ends on a tick.
func niceCeil(v float64) float64 {
	for _, t := range ticks(decadeFloor(v), decadeFloor(v)*10) {
		if t >= v*0.9999 {
			return t
		}
	}
	return decadeCeil(v)
}

func niceFloor(v float64) float64 {
	out := decadeFloor(v)
	for _, t := range ticks(decadeFloor(v), decadeFloor(v)*10) {
		if t <= v*1.0001 {
			out = t
		}
	}
	return out
}

func decadeFloor(v float64) float64 { return math.Pow(10, math.Floor(math.Log10(math.Max(v, 1e-9)))) }
func decadeCeil(v float64) float64  { return math.Pow(10, math.Ceil(math.Log10(math.Max(v, 1e-9)))) }

func tick(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%gk", v/1000)
	}
	return fmt.Sprintf("%g", v)
}
