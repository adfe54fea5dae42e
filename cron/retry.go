package cron

import (
	"errors"
	"fmt"
	"time"
)

// Decision is the answer of NextAttempt.
type Decision struct {
	// Retry is true when another attempt should start at At.
	Retry bool
	At    time.Time
	// Reason says why there is no retry (for the log and the job history).
	Reason string
}

// NextAttempt decides, after attempt number `attempt` (1 is the scheduled run itself) ended at
// lastEnd, whether and when to try again. firstStart is when attempt 1 started; nextScheduled is
// the job's next scheduled start (zero if unknown): a retry never starts at or after it, because
// then the scheduled run takes over. It is a pure function so every rule is testable with fixed
// times.
func (p Retry) NextAttempt(firstStart, lastEnd time.Time, attempt int, permanent bool, nextScheduled time.Time) Decision {
	switch {
	case permanent:
		return Decision{Reason: "permanent error: not retried"}
	case attempt >= 1+p.Retries:
		if p.Retries == 0 {
			return Decision{Reason: "no retries configured"}
		}
		return Decision{Reason: fmt.Sprintf("all %d retries used", p.Retries)}
	}
	at := lastEnd.Add(time.Duration(p.Delay))
	if p.Window > 0 {
		if end := firstStart.Add(time.Duration(p.Window)); at.After(end) {
			return Decision{Reason: fmt.Sprintf("retry window of %s closed at %s", time.Duration(p.Window), end.Format(time.RFC3339))}
		}
	}
	if !nextScheduled.IsZero() && !at.Before(nextScheduled) {
		return Decision{Reason: fmt.Sprintf("next scheduled run at %s takes over", nextScheduled.Format(time.RFC3339))}
	}
	return Decision{Retry: true, At: at}
}

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string   { return e.err.Error() }
func (e permanentError) Unwrap() error   { return e.err }
func (e permanentError) Permanent() bool { return true }

// Permanent marks err as permanent (bad password, VM not found, usage error): the retry loop
// never retries it. nil stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether any error in err's chain has a Permanent() method returning true.
func IsPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}
