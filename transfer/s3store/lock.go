package s3store

import (
	"context"
	"fmt"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/snapferry/snapferry/images/store"
)

// Object Lock, as this store uses it (docs/object-storage.md):
//
//   - Every object but lock files is written in COMPLIANCE mode, retained until LockFor after
//     the write. Nobody, not the owner of the keys either, can delete that version before then.
//   - Remove (prune, forget) puts a delete marker on the key: the repository no longer sees the
//     file, the retained version stays in the bucket until its date. So prune and forget work as
//     on any store, and a stolen key can hide files but destroy none younger than LockFor.
//   - Cleanup (run under the repository's exclusive lock) deletes for good the versions hidden
//     by a delete marker whose retention has passed, and the markers left with nothing below.
//   - Retain extends the retention of files still needed by recent snapshots.

// checkLockEnabled fails when the bucket has no Object Lock: retention dates would be refused.
func (s *Store) checkLockEnabled(ctx context.Context) error {
	enabled, _, _, _, err := s.cl.GetObjectLockConfig(ctx, s.o.Bucket)
	if err != nil {
		if minio.ToErrorResponse(err).Code == "ObjectLockConfigurationNotFoundError" {
			enabled = ""
		} else {
			return s.wrap("read the Object Lock setting of", "bucket "+s.o.Bucket, err)
		}
	}
	if enabled != "Enabled" {
		return fmt.Errorf("%s: bucket %q has no Object Lock; it can only be enabled when a bucket is created: "+
			"use a new bucket (init creates it with Object Lock): %w", s.location, s.o.Bucket, ErrPermanent)
	}
	return nil
}

// removeVersions hides h behind a delete marker (see above); the retained version stays.
func (s *Store) removeVersions(ctx context.Context, h store.Handle) error {
	if _, err := s.Stat(ctx, h); err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	if err := s.cl.RemoveObject(ctx, s.o.Bucket, s.key(h), minio.RemoveObjectOptions{}); err != nil {
		return s.wrap("remove", h.String(), err)
	}
	return nil
}

// Retain extends h's retention to until (never shortens it: COMPLIANCE mode refuses that).
func (s *Store) Retain(ctx context.Context, h store.Handle, until time.Time) error {
	if s.o.LockFor <= 0 {
		return nil
	}
	mode := minio.Compliance
	until = until.UTC().Truncate(time.Second)
	err := s.cl.PutObjectRetention(ctx, s.o.Bucket, s.key(h), minio.PutObjectRetentionOptions{Mode: &mode, RetainUntilDate: &until})
	return s.wrap("extend the retention of", h.String(), err)
}

// LockFor is the retention of new objects (0: no Object Lock).
func (s *Store) LockFor() time.Duration { return s.o.LockFor }
