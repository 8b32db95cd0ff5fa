package routing

import "time"

// Manager maps a CRM user to the phones that ring for them and when they work; the YAML
// managers: list becomes this.
type Manager struct {
	CRMUser   int64
	Name      string
	Endpoints []string // Asterisk dial strings: PJSIP/101, PJSIP/79161234567@trunk
	Schedule  ScheduleSpec
}

// ScheduleSpec is a manager's working time as configured; empty means always.
type ScheduleSpec struct {
	Timezone string   // IANA name, e.g. Europe/Moscow
	Days     []string // mon..sun
	Hours    string   // "09:00-18:00"
	DaysOff  []string // dates "2026-01-01"
}

// Defaults the configuration starts from.
const (
	// DefaultLookupTimeout keeps post-dial delay below what a caller notices as a hang
	// while giving a live amoCRM request (typically 200-600 ms) room to finish.
	DefaultLookupTimeout = 1500 * time.Millisecond
	DefaultCacheTTL      = 6 * time.Hour
	DefaultNegativeTTL   = 5 * time.Minute
	DefaultRegion        = "RU"
)

// DefaultPrecedence: an open deal's responsible knows the current talk best, then the
// contact's, then the company's.
var DefaultPrecedence = []string{"lead", "contact", "company"}
