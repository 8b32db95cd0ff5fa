package routing

import (
	"fmt"
	"strings"
	"time"
)

// Schedule is a manager's working time, evaluated in the manager's own time zone so that a
// team spread over Moscow and Novosibirsk is judged by each manager's wall clock, not the
// server's. The zero Schedule means "always at work".
type Schedule struct {
	loc *time.Location
	// days is indexed by time.Weekday; nil means every day.
	days *[7]bool
	// hours is the daily window in minutes after midnight, end exclusive. A window whose end
	// is not after its start crosses midnight ("22:00-06:00").
	hasHours   bool
	start, end int
	daysOff    map[string]bool // "2006-01-02" in loc
}

var weekdayNames = map[string]time.Weekday{
	"mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday, "thu": time.Thursday,
	"fri": time.Friday, "sat": time.Saturday, "sun": time.Sunday,
}

// ParseSchedule turns the YAML schedule into one that can be evaluated. Errors name the key
// and say what is allowed, because they reach the administrator through `check-config`.
// An empty time zone means the server's local zone (time.Local).
func ParseSchedule(c ScheduleSpec) (Schedule, error) {
	var s Schedule
	s.loc = time.Local
	if c.Timezone != "" {
		loc, err := time.LoadLocation(c.Timezone)
		if err != nil {
			return Schedule{}, fmt.Errorf("timezone %q: not an IANA time zone such as Europe/Moscow", c.Timezone)
		}
		s.loc = loc
	}
	if len(c.Days) > 0 {
		var days [7]bool
		for i, d := range c.Days {
			wd, ok := weekdayNames[strings.ToLower(strings.TrimSpace(d))]
			if !ok {
				return Schedule{}, fmt.Errorf("days[%d] %q: allowed: mon, tue, wed, thu, fri, sat, sun", i, d)
			}
			days[wd] = true
		}
		s.days = &days
	}
	if c.Hours != "" {
		from, to, ok := strings.Cut(c.Hours, "-")
		if !ok {
			return Schedule{}, fmt.Errorf("hours %q: allowed: HH:MM-HH:MM such as 09:00-18:00", c.Hours)
		}
		start, err := parseClock(from, false)
		if err != nil {
			return Schedule{}, fmt.Errorf("hours %q: start %v", c.Hours, err)
		}
		end, err := parseClock(to, true)
		if err != nil {
			return Schedule{}, fmt.Errorf("hours %q: end %v", c.Hours, err)
		}
		if start == end {
			return Schedule{}, fmt.Errorf("hours %q: start equals end; use 00:00-24:00 for the whole day", c.Hours)
		}
		s.hasHours, s.start, s.end = true, start, end
	}
	if len(c.DaysOff) > 0 {
		s.daysOff = make(map[string]bool, len(c.DaysOff))
		for i, d := range c.DaysOff {
			day, err := time.Parse(time.DateOnly, strings.TrimSpace(d))
			if err != nil {
				return Schedule{}, fmt.Errorf("days_off[%d] %q: allowed: a date YYYY-MM-DD", i, d)
			}
			s.daysOff[day.Format(time.DateOnly)] = true
		}
	}
	return s, nil
}

// parseClock reads "HH:MM" as minutes after midnight; "24:00" only as an end.
func parseClock(s string, isEnd bool) (int, error) {
	s = strings.TrimSpace(s)
	if len(s) != 5 || s[2] != ':' || !isDigits(s[:2]) || !isDigits(s[3:]) {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	h := int(s[0]-'0')*10 + int(s[1]-'0')
	m := int(s[3]-'0')*10 + int(s[4]-'0')
	if m > 59 || h > 24 || (h == 24 && (m != 0 || !isEnd)) {
		return 0, fmt.Errorf("%q is out of range 00:00-23:59 (24:00 allowed as an end)", s)
	}
	return h*60 + m, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Always reports whether the schedule places no limit at all.
func (s Schedule) Always() bool {
	return s.days == nil && !s.hasHours && len(s.daysOff) == 0
}

// Available reports whether t falls in working time. The hours window includes its start
// and excludes its end, so "09:00-18:00" is at work at 09:00:00 and off at 18:00:00. For a
// window that crosses midnight the hours after midnight belong to the previous day's shift:
// with days [fri] and hours 22:00-06:00, Saturday 02:00 is at work and a day off on
// Saturday does not cut Friday's night shift short.
func (s Schedule) Available(t time.Time) bool {
	if s.Always() {
		return true
	}
	loc := s.loc
	if loc == nil {
		loc = time.Local
	}
	lt := t.In(loc)
	day := lt
	if s.hasHours {
		m := lt.Hour()*60 + lt.Minute()
		if s.start < s.end {
			if m < s.start || m >= s.end {
				return false
			}
		} else {
			switch {
			case m >= s.start:
			case m < s.end:
				day = lt.AddDate(0, 0, -1)
			default:
				return false
			}
		}
	}
	if s.days != nil && !s.days[day.Weekday()] {
		return false
	}
	return !s.daysOff[day.Format(time.DateOnly)]
}
