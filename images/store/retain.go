package store

import (
	"context"
	"time"
)

// Retainer is implemented by stores that keep files undeletable until a date (S3 Object Lock):
// a file's retention starts when it is written, and what recent snapshots still use must have
// it renewed, or it becomes deletable while a snapshot needs it (repo.RenewRetention).
type Retainer interface {
	// Retention is how long a new file is kept (0: the store does not retain).
	Retention(ctx context.Context) (time.Duration, error)
	// Retain keeps h at least until until.
	Retain(ctx context.Context, h Handle, until time.Time) error
}

// Unwrapper is a Backend wrapping another (rate limit, cache, SSH link).
type Unwrapper interface {
	Unwrap() Backend
}

// RetainerOf finds a Retainer in be or below its wrappers.
func RetainerOf(be Backend) (Retainer, bool) { return findAbility[Retainer](be) }
