package cron

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron/crontest"
)

func TestNextAttemptRules(t *testing.T) {
	t0 := fixedNow
	p := Retry{Retries: 3, Delay: Duration(5 * time.Minute), Window: Duration(12 * time.Hour)}
	cases := []struct {
		name      string
		p         Retry
		lastEnd   time.Time
		attempt   int
		permanent bool
		next      time.Time
		retry     bool
		at        time.Time
		reason    string
	}{
		{"first failure", p, t0.Add(time.Minute), 1, false, time.Time{}, true, t0.Add(6 * time.Minute), ""},
		{"last retry allowed", p, t0.Add(time.Hour), 3, false, time.Time{}, true, t0.Add(65 * time.Minute), ""},
		{"retries used", p, t0.Add(time.Hour), 4, false, time.Time{}, false, time.Time{}, "all 3 retries used"},
		{"permanent", p, t0.Add(time.Minute), 1, true, time.Time{}, false, time.Time{}, "permanent"},
		{"window closes", p, t0.Add(11*time.Hour + 56*time.Minute), 2, false, time.Time{}, false, time.Time{}, "window"},
		{"window edge", p, t0.Add(11*time.Hour + 55*time.Minute), 2, false, time.Time{}, true, t0.Add(12 * time.Hour), ""},
		{"next schedule takes over", p, t0.Add(time.Hour), 1, false, t0.Add(time.Hour + 5*time.Minute), false, time.Time{}, "next scheduled run"},
		{"no retries", Retry{}, t0, 1, false, time.Time{}, false, time.Time{}, "no retries configured"},
		{"zero window is unbounded", Retry{Retries: 1, Delay: Duration(48 * time.Hour)}, t0, 1, false, time.Time{}, true, t0.Add(48 * time.Hour), ""},
	}
	for _, c := range cases {
		d := c.p.NextAttempt(t0, c.lastEnd, c.attempt, c.permanent, c.next)
		if d.Retry != c.retry || !d.At.Equal(c.at) || !strings.Contains(d.Reason, c.reason) {
			t.Errorf("%s: got %+v, want retry=%v at=%s reason~%q", c.name, d, c.retry, c.at, c.reason)
		}
	}
}

func TestRunnerRetriesWithFakeClock(t *testing.T) {
	clock := crontest.NewFakeClock(time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC))
	job := mustJob(t, "nightly", "0 2 * * *", "backup")
	job.Retry = Retry{Retries: 3, Delay: Duration(5 * time.Minute), Window: Duration(12 * time.Hour)}
	var seen []Attempt
	var calls []int
	r := Runner{Clock: clock, OnAttempt: func(a Attempt) { seen = append(seen, a) }}
	out := r.Run(context.Background(), job, func(ctx context.Context, attempt int) error {
		calls = append(calls, attempt)
		clock.Advance(10 * time.Minute) // each attempt takes 10 minutes
		if attempt < 3 {
			return fmt.Errorf("store unreachable (attempt %d)", attempt)
		}
		return nil
	})
	if out.Err != nil || len(out.Attempts) != 3 || fmt.Sprint(calls) != "[1 2 3]" {
		t.Fatalf("outcome %+v calls %v", out, calls)
	}
	if fmt.Sprint(clock.Sleeps()) != "[5m0s 5m0s]" {
		t.Fatalf("sleeps %v, want two waits of the retry delay", clock.Sleeps())
	}
	wantStarts := []string{"02:00", "02:15", "02:30"}
	for i, a := range seen {
		if a.Number != i+1 || a.Start.Format("15:04") != wantStarts[i] || a.End.Sub(a.Start) != 10*time.Minute {
			t.Errorf("attempt %d: %+v", i+1, a)
		}
	}
	if !seen[0].Next.Retry || seen[2].Next.Retry || seen[2].Err != nil {
		t.Fatalf("decisions: %+v", seen)
	}
}

func TestRunnerGivesUpAfterMaxRetries(t *testing.T) {
	clock := crontest.NewFakeClock(fixedNow)
	job := mustJob(t, "n", "0 2 * * *", "backup")
	job.Retry = Retry{Retries: 2, Delay: Duration(time.Minute)}
	n := 0
	out := Runner{Clock: clock}.Run(context.Background(), job, func(context.Context, int) error {
		n++
		return errors.New("boom")
	})
	if n != 3 || out.Err == nil || len(out.Attempts) != 3 || !strings.Contains(out.Attempts[2].Next.Reason, "all 2 retries used") {
		t.Fatalf("ran %d times, outcome %+v", n, out)
	}
}

func TestRunnerWindowAndSchedule(t *testing.T) {
	// Window: 1h, delay 25m, attempts take 10m: retry at 0:35, the next would start 1:10 > 1:00.
	clock := crontest.NewFakeClock(time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC))
	job := mustJob(t, "w", "0 0 * * *", "backup")
	job.Retry = Retry{Retries: 10, Delay: Duration(25 * time.Minute), Window: Duration(time.Hour)}
	fail := func(context.Context, int) error { clock.Advance(10 * time.Minute); return errors.New("x") }
	out := Runner{Clock: clock}.Run(context.Background(), job, fail)
	if len(out.Attempts) != 2 || !strings.Contains(out.Attempts[1].Next.Reason, "window") {
		t.Fatalf("window: %+v", out.Attempts)
	}
	// Hourly job, no window: retries stop before the next scheduled start at 01:00.
	clock = crontest.NewFakeClock(time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC))
	job = mustJob(t, "h", "@hourly", "check")
	job.Retry = Retry{Retries: 10, Delay: Duration(20 * time.Minute)}
	out = Runner{Clock: clock}.Run(context.Background(), job, fail)
	if len(out.Attempts) != 2 || !strings.Contains(out.Attempts[1].Next.Reason, "next scheduled run") {
		t.Fatalf("schedule: %+v", out.Attempts)
	}
}

func TestRunnerNeverRetriesPermanent(t *testing.T) {
	job := mustJob(t, "p", "0 2 * * *", "backup")
	job.Retry = Retry{Retries: 5, Delay: Duration(time.Minute)}
	errBadPassword := errors.New("wrong password")
	for name, tc := range map[string]struct {
		err      error
		classify func(error) bool
	}{
		"marked":     {fmt.Errorf("open repo: %w", Permanent(errors.New("VM web01 not found"))), nil},
		"classified": {fmt.Errorf("open repo: %w", errBadPassword), func(err error) bool { return errors.Is(err, errBadPassword) }},
		"exit code":  {&ExitError{Args: []string{"backup"}, Code: 2}, nil},
	} {
		clock := crontest.NewFakeClock(fixedNow)
		n := 0
		out := Runner{Clock: clock, IsPermanent: tc.classify}.Run(context.Background(), job, func(context.Context, int) error {
			n++
			return tc.err
		})
		if n != 1 || len(clock.Sleeps()) != 0 || !out.Attempts[0].Permanent || !errors.Is(out.Err, tc.err) {
			t.Errorf("%s: ran %d times, slept %v, outcome %+v", name, n, clock.Sleeps(), out)
		}
	}
}

func TestRunnerStopsWhenCancelled(t *testing.T) {
	job := mustJob(t, "c", "0 2 * * *", "backup")
	job.Retry = Retry{Retries: 5, Delay: Duration(time.Minute)}
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	out := Runner{Clock: crontest.NewFakeClock(fixedNow)}.Run(ctx, job, func(context.Context, int) error {
		n++
		cancel()
		return errors.New("interrupted")
	})
	if n != 1 || out.Err == nil {
		t.Fatalf("ran %d, outcome %+v", n, out)
	}
}
