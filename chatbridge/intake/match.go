package intake

import (
	"regexp"
	"strings"

	"github.com/crmlink/crmlink/chatbridge"
)

// rule is a configured rule with its conditions compiled.
type rule struct {
	name   string
	target Target
	conds  []condition
}

// condition is one key of When: the event's values it looks at, and the patterns any of
// which must match one of them.
type condition struct {
	values   func(chatbridge.Event) []string
	patterns []*regexp.Regexp
	digits   bool
}

// compileRules builds the matchers of the rules in order.
func compileRules(rs []Rule) []rule {
	out := make([]rule, 0, len(rs))
	for _, r := range rs {
		w := r.When
		cr := rule{name: r.Name, target: r.Target}
		add := func(vals []string, of func(chatbridge.Event) []string, substring, digits bool) {
			if len(vals) == 0 {
				return
			}
			c := condition{values: of, digits: digits}
			for _, v := range vals {
				c.patterns = append(c.patterns, glob(v, substring, digits))
			}
			cr.conds = append(cr.conds, c)
		}
		origin := func(f func(o chatbridge.Origin) []string) func(chatbridge.Event) []string {
			return func(e chatbridge.Event) []string {
				if e.Origin == nil {
					return nil
				}
				return f(*e.Origin)
			}
		}
		add(w.Source, func(e chatbridge.Event) []string {
			out := []string{string(e.Platform)}
			if e.Origin != nil {
				out = append(out, e.Origin.WidgetID)
			}
			return out
		}, false, false)
		add(w.UTMSource, origin(func(o chatbridge.Origin) []string { return []string{o.UTM.Source} }), false, false)
		add(w.UTMMedium, origin(func(o chatbridge.Origin) []string { return []string{o.UTM.Medium} }), false, false)
		add(w.UTMCampaign, origin(func(o chatbridge.Origin) []string { return []string{o.UTM.Campaign} }), false, false)
		add(w.Form, func(e chatbridge.Event) []string { return []string{formOf(e)} }, false, false)
		add(w.ExternalNumber, func(e chatbridge.Event) []string {
			if e.Visitor == nil {
				return nil
			}
			return []string{e.Visitor.Number}
		}, false, true)
		add(w.Department, origin(func(o chatbridge.Origin) []string { return []string{o.Department.Name, o.Department.ID} }), false, false)
		add(w.Page, origin(func(o chatbridge.Origin) []string { return []string{o.PageURL, o.PageTitle} }), true, false)
		add(w.Location, origin(func(o chatbridge.Origin) []string { return []string{o.Country, o.Region, o.City} }), true, false)
		out = append(out, cr)
	}
	return out
}

// formOf names the form an event came from.
func formOf(e chatbridge.Event) string {
	if e.Kind == chatbridge.EventOfflineMessage {
		return FormOffline
	}
	return FormChat
}

func (r rule) matches(e chatbridge.Event) bool {
	for _, c := range r.conds {
		if !c.matches(e) {
			return false
		}
	}
	return true
}

func (c condition) matches(e chatbridge.Event) bool {
	for _, v := range c.values(e) {
		if c.digits {
			v = digits(v)
		}
		if v == "" {
			continue
		}
		for _, p := range c.patterns {
			if p.MatchString(v) {
				return true
			}
		}
	}
	return false
}

// glob compiles a condition value: case-insensitive, * any run and ? any one character;
// anchored unless substring. A digits pattern keeps only digits and wildcards.
func glob(v string, substring, digitsOnly bool) *regexp.Regexp {
	v = strings.TrimSpace(v)
	var b strings.Builder
	b.WriteString("(?is)")
	if !substring {
		b.WriteString("^")
	}
	for _, r := range v {
		switch {
		case r == '*':
			b.WriteString(".*")
		case r == '?':
			b.WriteString(".")
		case digitsOnly && (r < '0' || r > '9'):
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	if !substring {
		b.WriteString("$")
	}
	return regexp.MustCompile(b.String())
}

func digits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}
