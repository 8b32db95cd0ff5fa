package main

import (
	"cmp"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/crmlink/crmlink/crm/amocrm/sandbox"
)

// row is one scenario's line in the table.
type row struct {
	title, caller, expect string
	rang                  []string
	result                []string
	got                   [3]string // CRMLINK_RESULT, CRMLINK_REASON, CRMLINK_OWNER
	records               []string
	problems              []string
	took                  time.Duration
}

func (r row) ok() bool { return len(r.problems) == 0 }

// describe names each new CRM record in a few words.
func (d *demo) describe(c sandbox.Created) []string {
	var out []string
	for _, x := range c.Contacts {
		out = append(out, fmt.Sprintf("contact %d %s -> %s", x.ID, strings.Join(x.Phones, ","), d.userName(x.ResponsibleUserID)))
	}
	for _, x := range c.Leads {
		out = append(out, fmt.Sprintf("deal %d %q -> %s", x.ID, x.Name, d.userName(x.ResponsibleUserID)))
	}
	for _, x := range c.Tasks {
		out = append(out, fmt.Sprintf("task on %s -> %s, due %s", d.entity(x.EntityType, x.EntityID, c),
			d.userName(x.ResponsibleUserID), time.Unix(x.CompleteTill, 0).Format("15:04")))
	}
	for _, x := range c.Notes {
		kind := x.NoteType
		if x.Params.CallResult != "" {
			kind += " (" + strings.ToLower(x.Params.CallResult) + ")"
		} else if x.Params.Duration > 0 {
			kind += fmt.Sprintf(" (%d s)", x.Params.Duration)
		}
		line := fmt.Sprintf("note %s on %s, by %s", kind, d.entity(x.EntityType, x.EntityID, c), cmp.Or(d.userName(x.CreatedBy), "the integration"))
		if link, _, ok := strings.Cut(x.Params.Link, "?"); ok {
			line += "; recording " + link + " (signed)"
		}
		out = append(out, line)
	}
	if len(out) == 0 {
		out = []string{"(none)"}
	}
	return out
}

// describeCards names the incoming-call cards of a call: whom amoCRM showed the caller.
func (d *demo) describeCards(es []sandbox.CallEvent) []string {
	out := make([]string, 0, len(es))
	for _, e := range es {
		names := make([]string, len(e.Users))
		for i, u := range e.Users {
			names[i] = d.userName(u)
		}
		out = append(out, fmt.Sprintf("card %s -> %s", e.PhoneNumber, strings.Join(names, ", ")))
	}
	return out
}

// entity names a deal or contact: "deal 4003", with the seed's name for seeded ones.
func (d *demo) entity(typ string, id int64, c sandbox.Created) string {
	switch typ {
	case "leads":
		for _, l := range d.seed.Leads {
			if l.ID == id {
				return fmt.Sprintf("deal %d %q", id, l.Name)
			}
		}
		return fmt.Sprintf("deal %d", id)
	case "contacts":
		return fmt.Sprintf("contact %d", id)
	}
	return fmt.Sprintf("%s %d", typ, id)
}

// printTable draws the rows with multi-line cells.
func printTable(w io.Writer, rows []row) {
	header := []string{"#", "scenario (caller; expected)", "who rang", "CRMLINK_RESULT / REASON", "CRM records crmlink wrote (sandbox)", "check"}
	cells := make([][][]string, len(rows))
	for i, r := range rows {
		check := []string{"PASS"}
		if !r.ok() {
			check = []string{"FAIL"}
		}
		if r.took > 0 {
			check = append(check, fmt.Sprintf("%.0f s", r.took.Seconds()))
		}
		rang := r.rang
		if len(rang) == 0 {
			rang = []string{"-"}
		}
		cells[i] = [][]string{
			{fmt.Sprint(i + 1)},
			{r.title, r.caller, "expect: " + r.expect},
			rang, r.result, r.records, check,
		}
	}
	width := make([]int, len(header))
	for c, h := range header {
		width[c] = utf8.RuneCountInString(h)
		for _, row := range cells {
			for _, line := range row[c] {
				width[c] = max(width[c], utf8.RuneCountInString(line))
			}
		}
	}
	rule := func() {
		var b strings.Builder
		for _, n := range width {
			b.WriteString("+" + strings.Repeat("-", n+2))
		}
		fmt.Fprintln(w, b.String()+"+")
	}
	line := func(parts [][]string) {
		n := 0
		for _, p := range parts {
			n = max(n, len(p))
		}
		for i := 0; i < n; i++ {
			var b strings.Builder
			for c, p := range parts {
				s := ""
				if i < len(p) {
					s = p[i]
				}
				b.WriteString("| " + s + strings.Repeat(" ", width[c]-utf8.RuneCountInString(s)) + " ")
			}
			fmt.Fprintln(w, b.String()+"|")
		}
	}
	rule()
	hs := make([][]string, len(header))
	for i, h := range header {
		hs[i] = []string{h}
	}
	line(hs)
	rule()
	for _, r := range cells {
		line(r)
		rule()
	}
	for i, r := range rows {
		for _, p := range r.problems {
			fmt.Fprintf(w, "  %d. %s: %s\n", i+1, r.title, p)
		}
	}
}
