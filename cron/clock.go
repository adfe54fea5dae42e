package cron

import "github.com/snapferry/snapferry/cron/clock"

// Clock is the time source for schedules and retries (cron/clock).
type Clock = clock.Clock

// SystemClock is the wall clock.
type SystemClock = clock.System
