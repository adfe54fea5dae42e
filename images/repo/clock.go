package repo

import "time"

// Clock gives the time to the code that computes ages: lock staleness, retention, prune's grace
// period. Tests pass a fixed clock.
type Clock interface {
	Now() time.Time
}

// SystemClock is the real time.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// FixedClock always returns the same instant; tests advance it by making a new one.
type FixedClock time.Time

// Now returns the fixed instant.
func (c FixedClock) Now() time.Time { return time.Time(c) }
