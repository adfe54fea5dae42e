package s3store

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/snapferry/snapferry/images/store"
)

// Object Lock, as this store uses it (docs/object-storage.md):
//
//   - `init --s3-object-lock=30d` makes the bucket with Object Lock (or checks an existing one
//     has it) and sets the bucket's default retention: COMPLIANCE mode, 30 days. The server then
//     retains every version written, whatever client writes it; nobody, not the owner of the
//     keys either, can delete a version before its date, and the setting lives in the bucket,
//     so later commands need no flag.
//   - Remove (prune, forget, unlock) deletes without a version: the server puts a delete marker
//     on the key and keeps the version. The repository no longer sees the file, so prune and
//     forget work as on any store, and a stolen key can hide files but destroy none younger than
//     the retention. Hidden versions come back by removing their delete markers (Undelete).
//   - Cleanup (prune, under the repository's exclusive lock) deletes for good the versions hidden
//     by a delete marker once their retention has passed, and then the markers.
//   - Retain extends the retention of files recent snapshots still need (repo.RenewRetention):
//     a pack written 40 days ago that yesterday's snapshot uses must not become deletable.

// checkLockEnabled fails when the bucket has no Object Lock: it cannot retain anything.
func (s *Store) checkLockEnabled(ctx context.Context) error {
	enabled, _, _, _, err := s.cl.GetObjectLockConfig(ctx, s.o.Bucket)
	if err != nil && minio.ToErrorResponse(err).Code != "ObjectLockConfigurationNotFoundError" {
		return s.wrap("read the Object Lock setting of", "bucket "+s.o.Bucket, err)
	}
	if enabled != "Enabled" {
		return fmt.Errorf("%s: bucket %q has no Object Lock, and it can only be enabled when a bucket is created: "+
			"name a new bucket (init creates it with Object Lock): %w", s.location, s.o.Bucket, ErrPermanent)
	}
	return nil
}

// setDefaultRetention makes the bucket retain every new version for LockFor (whole days, as S3
// counts them) in COMPLIANCE mode.
func (s *Store) setDefaultRetention(ctx context.Context) error {
	mode := minio.Compliance
	days := uint(math.Ceil(s.o.LockFor.Hours() / 24))
	unit := minio.Days
	if err := s.cl.SetObjectLockConfig(ctx, s.o.Bucket, &mode, &days, &unit); err != nil {
		return s.wrap("set the default retention of", "bucket "+s.o.Bucket, err)
	}
	return nil
}

// Retention is how long the bucket retains new versions: LockFor when given, else the bucket's
// default retention (0 when it has none), asked once per Store.
func (s *Store) Retention(ctx context.Context) (time.Duration, error) {
	if s.o.LockFor > 0 {
		return s.o.LockFor, nil
	}
	s.lock.Lock()
	defer s.lock.Unlock()
	if !s.lock.known {
		d, err := s.bucketRetention(ctx)
		if err != nil {
			return 0, err
		}
		s.lock.known, s.lock.retention = true, d
	}
	return s.lock.retention, nil
}

func (s *Store) bucketRetention(ctx context.Context) (time.Duration, error) {
	_, mode, validity, unit, err := s.cl.GetObjectLockConfig(ctx, s.o.Bucket)
	if err != nil {
		// A server answer other than "no such bucket" means no retention we can use: no Object
		// Lock configured (ObjectLockConfigurationNotFoundError), a server without the API
		// (NotImplemented), or a backup key without s3:GetBucketObjectLockConfiguration
		// (AccessDenied) — least-privilege keys are the point of such a setup, so the store
		// works on without it. Only failures to get an answer at all are errors.
		if r := minio.ToErrorResponse(err); r.Code != "" && r.Code != "NoSuchBucket" {
			return 0, nil
		}
		return 0, s.wrap("read the Object Lock setting of", "bucket "+s.o.Bucket, err)
	}
	if mode == nil || validity == nil || unit == nil {
		return 0, nil
	}
	d := time.Duration(*validity) * 24 * time.Hour
	if *unit == minio.Years {
		d *= 365
	}
	return d, nil
}

// Retain extends h's retention to until. COMPLIANCE mode refuses shortening it, so callers only
// ask for dates later than the one the file was written with.
func (s *Store) Retain(ctx context.Context, h store.Handle, until time.Time) error {
	if err := store.Validate(h); err != nil {
		return fmt.Errorf("retain %s: %w", h, err)
	}
	mode := minio.Compliance
	until = until.UTC().Truncate(time.Second).Add(time.Second)
	err := s.cl.PutObjectRetention(ctx, s.o.Bucket, s.key(h), minio.PutObjectRetentionOptions{Mode: &mode, RetainUntilDate: &until})
	return s.wrap("extend the retention of", h.String(), err)
}

// RetainedUntil is h's current retain-until date (zero when it has none).
func (s *Store) RetainedUntil(ctx context.Context, h store.Handle) (time.Time, error) {
	_, until, err := s.cl.GetObjectRetention(ctx, s.o.Bucket, s.key(h), "")
	if err != nil {
		return time.Time{}, s.wrap("read the retention of", h.String(), err)
	}
	if until == nil {
		return time.Time{}, nil
	}
	return *until, nil
}

// Undelete removes the delete markers put on the repository's keys since since, bringing back
// the versions they hid: the way back after someone with the keys removed files (or after a
// prune that should not have run). Lock files stay removed: a lock brought back would block the
// repository for a process long gone. It returns how many files came back.
func (s *Store) Undelete(ctx context.Context, since time.Time) (int, error) {
	n := 0
	locks := s.join(string(store.KindLocks)) + "/"
	for v := range s.cl.ListObjects(ctx, s.o.Bucket, minio.ListObjectsOptions{Prefix: s.join(""), Recursive: true, WithVersions: true}) {
		if v.Err != nil {
			return n, s.wrap("list versions in", "bucket "+s.o.Bucket, v.Err)
		}
		if !v.IsDeleteMarker || !v.IsLatest || v.LastModified.Before(since) || strings.HasPrefix(v.Key, locks) {
			continue
		}
		if err := s.cl.RemoveObject(ctx, s.o.Bucket, v.Key, minio.RemoveObjectOptions{VersionID: v.VersionID}); err != nil {
			return n, s.wrap("remove the delete marker of", v.Key, err)
		}
		n++
	}
	return n, nil
}
