package clock

import (
	"context"
	"time"
)

// Clock is a time source for code that waits: schedules and retries (cron), KillIdle's grace
// periods (pidmgr), bandwidth limits (transfer/ratelimit). Tests pass a fake that advances at
// once, so a retry delay of hours or a rate limit of minutes costs nothing.
type Clock interface {
	Now() time.Time
	// Sleep waits d or until ctx is done, returning ctx.Err() in that case.
	Sleep(ctx context.Context, d time.Duration) error
}

// System is the wall clock.
type System struct{}

// Now returns time.Now().
func (System) Now() time.Time { return time.Now() }

// Sleep blocks for d or until ctx is done.
func (System) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Fixed is a clock that always says the same instant and never waits: for tests of code that
// only computes ages (lock staleness, retention). Tests advance it by making a new one.
type Fixed time.Time

// Now returns the fixed instant.
func (c Fixed) Now() time.Time { return time.Time(c) }

// Sleep returns at once (ctx.Err() when ctx is done).
func (Fixed) Sleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }
