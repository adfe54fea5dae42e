package cron

import (
	"fmt"
	"sort"
	"time"
)

// Occurrence is one scheduled start of a job.
type Occurrence struct {
	Job Job
	At  time.Time
}

// maxOccurrences bounds DueUntil so a "* * * * *" job over a long span cannot exhaust memory on
// an ESXi host; the caller gets an error telling it to narrow the span.
const maxOccurrences = 10000

// DueAt returns the jobs that the crontab starts in the minute containing at, in file order.
func DueAt(jobs []Job, at time.Time) ([]Job, error) {
	var due []Job
	for _, j := range jobs {
		s, err := j.ParsedSchedule()
		if err != nil {
			return nil, err
		}
		if s.RunsAt(at) {
			due = append(due, j)
		}
	}
	return due, nil
}

// DueUntil returns every start of every job in the minutes from `from` up to and including
// `until`, ordered by time and then by file order.
func DueUntil(jobs []Job, from, until time.Time) ([]Occurrence, error) {
	if until.Before(from) {
		return nil, fmt.Errorf("due until %s: that is before %s", until.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	start := from.Truncate(time.Minute).Add(-time.Second) // so a start in from's minute counts
	var out []Occurrence
	for _, j := range jobs {
		s, err := j.ParsedSchedule()
		if err != nil {
			return nil, err
		}
		for t := s.Next(start); !t.IsZero() && !t.After(until); t = s.Next(t) {
			if len(out) >= maxOccurrences {
				return nil, fmt.Errorf("due until %s: more than %d runs; ask for a shorter span", until.Format(time.RFC3339), maxOccurrences)
			}
			out = append(out, Occurrence{Job: j, At: t})
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].At.Before(out[b].At) })
	return out, nil
}

// NextRun returns the job's first start strictly after t (for `cron list`).
func NextRun(j Job, t time.Time) (time.Time, error) {
	s, err := j.ParsedSchedule()
	if err != nil {
		return time.Time{}, err
	}
	return s.Next(t), nil
}

// ParseAt reads a --at value: RFC 3339 ("2026-11-22T02:00:00Z"), "2006-01-02 15:04",
// "2006-01-02T15:04" or "15:04" (today, or tomorrow when that time has passed), the latter
// forms in now's location (the host's time zone, as crond uses).
func ParseAt(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, now.Location()); err == nil {
			return t, nil
		}
	}
	if c, err := time.ParseInLocation("15:04", s, now.Location()); err == nil {
		t := time.Date(now.Year(), now.Month(), now.Day(), c.Hour(), c.Minute(), 0, 0, now.Location())
		if t.Before(now.Truncate(time.Minute)) {
			t = t.AddDate(0, 0, 1)
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("parse time %q: use 2026-11-22T02:00:00Z, \"2026-11-22 02:00\" or 02:00", s)
}
