package cron

import (
	"strings"
	"testing"
	"time"
)

func TestParseScheduleForms(t *testing.T) {
	for spec, fields := range map[string]string{
		"30 2 * * *":         "30 2 * * *",
		"  */15   * * * 1-5": "*/15 * * * 1-5",
		"@daily":             "0 0 * * *",
		"@midnight":          "0 0 * * *",
		"@weekly":            "0 0 * * 0",
		"@monthly":           "0 0 1 * *",
		"@yearly":            "0 0 1 1 *",
		"@hourly":            "0 * * * *",
		"0 3 * jan-mar sun":  "0 3 * jan-mar sun",
	} {
		s, err := ParseSchedule(spec)
		if err != nil {
			t.Errorf("%q: %v", spec, err)
			continue
		}
		if s.CrontabFields() != fields {
			t.Errorf("%q: fields %q, want %q", spec, s.CrontabFields(), fields)
		}
	}
	for spec, msg := range map[string]string{
		"":                 "empty",
		"@every 1h":        "@every",
		"TZ=UTC 0 2 * * *": "time zone",
		"0 2 ? * *":        "busybox",
		"@fortnightly":     "unknown descriptor",
		"0 2 * *":          "want 5 fields",
		"0 0 2 * * *":      "want 5 fields",
		"61 2 * * *":       "parse schedule",
	} {
		if _, err := ParseSchedule(spec); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: want error containing %q, got %v", spec, msg, err)
		}
	}
}

// A fixed clock: Saturday 2026-11-21 23:30 UTC.
var fixedNow = time.Date(2026, 11, 21, 23, 30, 0, 0, time.UTC)

func TestDueAtFixedClock(t *testing.T) {
	jobs := []Job{
		mustJob(t, "nightly", "0 2 * * *", "backup"),
		mustJob(t, "hourly", "@hourly", "check"),
		mustJob(t, "weekdays", "0 2 * * 1-5", "backup"),
		mustJob(t, "midnight", "@daily", "forget"),
	}
	names := func(js []Job) string {
		var n []string
		for _, j := range js {
			n = append(n, j.Name)
		}
		return strings.Join(n, ",")
	}
	for at, want := range map[time.Time]string{
		time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC):  "nightly,hourly",          // a Sunday
		time.Date(2026, 11, 23, 2, 0, 59, 0, time.UTC): "nightly,hourly,weekdays", // Monday, seconds ignored
		time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC):  "hourly,midnight",
		time.Date(2026, 11, 22, 2, 1, 0, 0, time.UTC):  "",
		fixedNow: "",
	} {
		got, err := DueAt(jobs, at)
		if err != nil {
			t.Fatal(err)
		}
		if names(got) != want {
			t.Errorf("due at %s: %q, want %q", at, names(got), want)
		}
	}
}

func TestDueUntilFixedClock(t *testing.T) {
	jobs := []Job{
		mustJob(t, "nightly", "0 2 * * *", "backup"),
		mustJob(t, "hourly", "@hourly", "check"),
	}
	occ, err := DueUntil(jobs, fixedNow, time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range occ {
		got = append(got, o.At.Format("15:04")+" "+o.Job.Name)
	}
	want := "00:00 hourly|01:00 hourly|02:00 nightly|02:00 hourly"
	if strings.Join(got, "|") != want {
		t.Fatalf("got %v, want %s", got, want)
	}
	// A start in the very minute of `from` counts.
	occ, _ = DueUntil(jobs, time.Date(2026, 11, 22, 1, 0, 30, 0, time.UTC), time.Date(2026, 11, 22, 1, 30, 0, 0, time.UTC))
	if len(occ) != 1 || occ[0].Job.Name != "hourly" {
		t.Fatalf("from's own minute: %v", occ)
	}
	if _, err := DueUntil(jobs, fixedNow, fixedNow.Add(-time.Hour)); err == nil {
		t.Fatal("until before from must fail")
	}
	every := []Job{mustJob(t, "busy", "* * * * *", "check")}
	if _, err := DueUntil(every, fixedNow, fixedNow.AddDate(1, 0, 0)); err == nil || !strings.Contains(err.Error(), "shorter span") {
		t.Fatalf("unbounded span: %v", err)
	}
	next, _ := NextRun(jobs[0], fixedNow)
	if !next.Equal(time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)) {
		t.Fatalf("next run %s", next)
	}
}

func TestParseAt(t *testing.T) {
	for in, want := range map[string]time.Time{
		"2026-11-22T02:00:00Z": time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC),
		"2026-11-22 02:00":     time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC),
		"23:45":                time.Date(2026, 11, 21, 23, 45, 0, 0, time.UTC), // later today
		"02:00":                time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC),   // passed: tomorrow
	} {
		got, err := ParseAt(in, fixedNow)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseAt(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	if _, err := ParseAt("tomorrow", fixedNow); err == nil {
		t.Fatal("want an error for an unknown form")
	}
}
