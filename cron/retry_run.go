package cron

import (
	"context"
	"fmt"
	"time"

	"github.com/snapferry/snapferry/cron/clock"
)

// Attempt is one try of a job run, reported to the caller for the job history.
type Attempt struct {
	Number     int // 1 is the scheduled run, 2 the first retry...
	Start, End time.Time
	Err        error
	Permanent  bool
	// Next is the decision taken after this attempt (zero after a success).
	Next Decision
}

// Outcome is the result of a whole run with its retries.
type Outcome struct {
	Attempts []Attempt
	// Err is the last attempt's error (nil on success), or the context's error when the run was
	// cancelled while waiting for a retry.
	Err error
}

// Runner runs a job's attempts. The job history lives elsewhere (cron/history); OnAttempt is
// where the caller records each attempt.
type Runner struct {
	Clock clock.Clock
	// IsPermanent classifies errors the caller knows cannot be fixed by retrying (usage error,
	// bad password, VM not found). Errors marked with Permanent are permanent regardless.
	IsPermanent func(error) bool
	// OnAttempt, if set, is called after every attempt, before any retry wait.
	OnAttempt func(Attempt)
}

// Run calls exec for attempt 1 and then for retries as job.Retry allows, sleeping on the clock
// between them. exec gets the attempt number so logs, hooks and history can show it.
func (r Runner) Run(ctx context.Context, job Job, exec func(ctx context.Context, attempt int) error) Outcome {
	var out Outcome
	var next time.Time
	if s, err := job.ParsedSchedule(); err == nil {
		next = s.Next(r.Clock.Now())
	}
	first := time.Time{}
	for n := 1; ; n++ {
		a := Attempt{Number: n, Start: r.Clock.Now()}
		if n == 1 {
			first = a.Start
		}
		a.Err = exec(ctx, n)
		a.End = r.Clock.Now()
		a.Permanent = a.Err != nil && (IsPermanent(a.Err) || (r.IsPermanent != nil && r.IsPermanent(a.Err)))
		if a.Err != nil {
			a.Next = job.Retry.NextAttempt(first, a.End, n, a.Permanent, next)
			if a.Next.Retry && ctx.Err() != nil {
				a.Next = Decision{Reason: "cancelled"}
			}
		}
		out.Attempts = append(out.Attempts, a)
		out.Err = a.Err
		if r.OnAttempt != nil {
			r.OnAttempt(a)
		}
		if a.Err == nil || !a.Next.Retry {
			return out
		}
		if err := r.Clock.Sleep(ctx, a.Next.At.Sub(r.Clock.Now())); err != nil {
			out.Err = fmt.Errorf("job %s: waiting for retry %d: %w (last error: %v)", job.Name, n, err, a.Err)
			return out
		}
	}
}
