package cron

import (
	"fmt"
	"strings"
	"time"

	robfig "github.com/robfig/cron/v3"
)

// Schedule is a parsed job schedule. It knows both its next run times (through robfig/cron's
// parser, so `due` agrees with a well-tested implementation) and the five crontab fields that
// busybox crond on the host will see.
type Schedule struct {
	spec   string
	fields string
	sched  robfig.Schedule
}

// descriptorFields translates @-descriptors into 5-field form: ESXi's busybox crond predates
// descriptor support on older releases, so the crontab always gets the plain fields.
func descriptorFields(spec string) (string, bool) {
	switch spec {
	case "@yearly", "@annually":
		return "0 0 1 1 *", true
	case "@monthly":
		return "0 0 1 * *", true
	case "@weekly":
		return "0 0 * * 0", true
	case "@daily", "@midnight":
		return "0 0 * * *", true
	case "@hourly":
		return "0 * * * *", true
	}
	return "", false
}

// ParseSchedule parses a standard 5-field cron expression ("30 2 * * 1-5") or a descriptor
// (@yearly, @monthly, @weekly, @daily, @midnight, @hourly). Forms a host crontab cannot express
// are refused with an explanation: "@every", "TZ=" prefixes and robfig's "?" wildcard.
func ParseSchedule(spec string) (Schedule, error) {
	s := strings.Join(strings.Fields(spec), " ")
	if s == "" {
		return Schedule{}, fmt.Errorf("parse schedule: empty; give 5 cron fields like \"0 2 * * *\" or a descriptor like @daily")
	}
	switch {
	case strings.HasPrefix(s, "@every"):
		return Schedule{}, fmt.Errorf("parse schedule %q: @every cannot be written into a host crontab; use 5 cron fields such as \"*/30 * * * *\"", spec)
	case strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ="):
		return Schedule{}, fmt.Errorf("parse schedule %q: time zone prefixes are not supported; the host crontab runs in the host's time zone", spec)
	case strings.Contains(s, "?"):
		return Schedule{}, fmt.Errorf("parse schedule %q: \"?\" is not understood by busybox crond; use \"*\"", spec)
	}
	fields := s
	if strings.HasPrefix(s, "@") {
		f, ok := descriptorFields(s)
		if !ok {
			return Schedule{}, fmt.Errorf("parse schedule %q: unknown descriptor; use @yearly, @monthly, @weekly, @daily, @midnight or @hourly", spec)
		}
		fields = f
	} else if n := len(strings.Fields(s)); n != 5 {
		return Schedule{}, fmt.Errorf("parse schedule %q: want 5 fields (minute hour day-of-month month day-of-week), got %d", spec, n)
	}
	sched, err := robfig.ParseStandard(s)
	if err != nil {
		return Schedule{}, fmt.Errorf("parse schedule %q: %w", spec, err)
	}
	return Schedule{spec: s, fields: fields, sched: sched}, nil
}

// String returns the schedule as the user wrote it (whitespace normalised).
func (s Schedule) String() string { return s.spec }

// CrontabFields returns the five fields for a crontab line.
func (s Schedule) CrontabFields() string { return s.fields }

// Next returns the first run time strictly after t, in t's location.
func (s Schedule) Next(t time.Time) time.Time { return s.sched.Next(t) }

// RunsAt reports whether the schedule fires in the minute that contains t. Cron works in whole
// minutes, so seconds in t are ignored.
func (s Schedule) RunsAt(t time.Time) bool {
	m := t.Truncate(time.Minute)
	return s.sched.Next(m.Add(-time.Second)).Equal(m)
}
