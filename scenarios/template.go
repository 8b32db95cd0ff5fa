package scenarios

import (
	"regexp"
	"strings"
	"time"

	"github.com/crmlink/crmlink/crm"
)

// Placeholders a name or text template may use. Times are in the Engine's location.
var placeholders = map[string]func(f fields) string{
	"phone":    func(f fields) string { return string(f.phone) },
	"national": func(f fields) string { return f.phone.National() },
	"called":   func(f fields) string { return f.called },
	"date":     func(f fields) string { return f.start.Format("2006-01-02") },
	"time":     func(f fields) string { return f.start.Format("15:04") },
}

const placeholderList = "{phone} (+74951234567), {national} (4951234567), {called} (the dialled number), {date} (2006-01-02), {time} (15:04)"

var rePlaceholder = regexp.MustCompile(`\{([a-z_]+)\}`)

// fields are the values of one outcome a template can show.
type fields struct {
	phone  crm.Phone
	called string
	start  time.Time
}

// render fills a template; an unknown placeholder (impossible after Validate) stays as is.
func render(tmpl string, f fields) string {
	if !strings.Contains(tmpl, "{") {
		return tmpl
	}
	return rePlaceholder.ReplaceAllStringFunc(tmpl, func(m string) string {
		if fn, ok := placeholders[m[1:len(m)-1]]; ok {
			return fn(f)
		}
		return m
	})
}
