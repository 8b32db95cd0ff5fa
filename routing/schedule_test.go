package routing

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestScheduleAvailable(t *testing.T) {
	weekdays := []string{"mon", "tue", "wed", "thu", "fri"}
	msk := ScheduleSpec{Timezone: "Europe/Moscow", Days: weekdays, Hours: "09:00-18:00", DaysOff: []string{"2026-03-09"}}
	// Moscow is UTC+3 all year; Novosibirsk UTC+7.
	utc := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		return tm
	}
	cases := []struct {
		name  string
		sched ScheduleSpec
		at    string
		want  bool
	}{
		{"empty schedule is always", ScheduleSpec{}, "2026-03-08T03:00:00Z", true},
		{"opening minute", msk, "2026-03-02T06:00:00Z", true},
		{"a second before opening", msk, "2026-03-02T05:59:59Z", false},
		{"last second", msk, "2026-03-02T14:59:59Z", true},
		{"closing time is off (end exclusive)", msk, "2026-03-02T15:00:00Z", false},
		{"Saturday", msk, "2026-03-07T10:00:00Z", false},
		{"Friday in Moscow while still Thursday night in UTC", ScheduleSpec{Timezone: "Europe/Moscow", Days: []string{"fri"}, Hours: "00:00-24:00"}, "2026-03-05T22:00:00Z", true},
		{"day off", msk, "2026-03-09T10:00:00Z", false},
		{"day after the day off", msk, "2026-03-10T10:00:00Z", true},
		{"day off is a date in the manager's zone", ScheduleSpec{Timezone: "Asia/Novosibirsk", DaysOff: []string{"2026-03-03"}}, "2026-03-02T18:00:00Z", false},
		{"same instant, other zone: 13:00 in Novosibirsk", ScheduleSpec{Timezone: "Asia/Novosibirsk", Hours: "09:00-12:00"}, "2026-03-02T06:00:00Z", false},
		{"same instant, Novosibirsk morning", ScheduleSpec{Timezone: "Asia/Novosibirsk", Hours: "09:00-12:00"}, "2026-03-02T02:00:00Z", true},
		{"hours only: every day", ScheduleSpec{Timezone: "UTC", Hours: "09:00-18:00"}, "2026-03-08T12:00:00Z", true},
		{"days only: all day", ScheduleSpec{Timezone: "UTC", Days: []string{"sun"}}, "2026-03-08T23:59:59Z", true},
		{"until midnight", ScheduleSpec{Timezone: "UTC", Hours: "20:00-24:00"}, "2026-03-02T23:59:59Z", true},
		{"night shift, evening part", ScheduleSpec{Timezone: "UTC", Days: []string{"fri"}, Hours: "22:00-06:00"}, "2026-03-06T23:00:00Z", true},
		{"night shift, after midnight belongs to Friday", ScheduleSpec{Timezone: "UTC", Days: []string{"fri"}, Hours: "22:00-06:00"}, "2026-03-07T05:59:00Z", true},
		{"night shift, Friday early morning is Thursday's shift", ScheduleSpec{Timezone: "UTC", Days: []string{"fri"}, Hours: "22:00-06:00"}, "2026-03-06T02:00:00Z", false},
		{"night shift, end exclusive", ScheduleSpec{Timezone: "UTC", Days: []string{"fri"}, Hours: "22:00-06:00"}, "2026-03-07T06:00:00Z", false},
		{"night shift, daytime gap", ScheduleSpec{Timezone: "UTC", Hours: "22:00-06:00"}, "2026-03-07T12:00:00Z", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := ParseSchedule(c.sched)
			require.NoError(t, err)
			assert.Equal(t, c.want, s.Available(utc(c.at)))
		})
	}
}

func TestParseScheduleErrors(t *testing.T) {
	cases := []struct {
		name  string
		sched ScheduleSpec
		want  string
	}{
		{"time zone", ScheduleSpec{Timezone: "Mars/Olympus"}, `timezone "Mars/Olympus"`},
		{"day", ScheduleSpec{Days: []string{"mon", "monday"}}, `days[1] "monday": allowed: mon, tue`},
		{"hours without dash", ScheduleSpec{Hours: "09:00"}, `hours "09:00": allowed: HH:MM-HH:MM`},
		{"hours short", ScheduleSpec{Hours: "9-18"}, `hours "9-18": start "9" is not HH:MM`},
		{"hours out of range", ScheduleSpec{Hours: "09:00-25:00"}, `hours "09:00-25:00": end "25:00" is out of range`},
		{"minutes out of range", ScheduleSpec{Hours: "09:60-18:00"}, `start "09:60" is out of range`},
		{"24:00 as a start", ScheduleSpec{Hours: "24:00-06:00"}, `start "24:00" is out of range`},
		{"empty window", ScheduleSpec{Hours: "09:00-09:00"}, "start equals end"},
		{"signed hour", ScheduleSpec{Hours: "+9:00-18:00"}, `start "+9:00" is not HH:MM`},
		{"day off", ScheduleSpec{DaysOff: []string{"2026-13-01"}}, `days_off[0] "2026-13-01": allowed: a date YYYY-MM-DD`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseSchedule(c.sched)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

func TestScheduleAlways(t *testing.T) {
	s, err := ParseSchedule(ScheduleSpec{Timezone: "Europe/Moscow"})
	require.NoError(t, err)
	assert.True(t, s.Always(), "a time zone alone places no limit")
	assert.True(t, Schedule{}.Available(time.Now()))
}
