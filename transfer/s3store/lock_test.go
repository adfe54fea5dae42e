package s3store_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/storetest"
	"github.com/snapferry/snapferry/transfer/s3store"
	"github.com/snapferry/snapferry/transfer/s3store/rgwtest"
)

// TestConformanceObjectLock: on an Object Lock bucket (versioned, every version retained) the
// store keeps the Backend contract: a second save of a name is refused, removes hide, names are
// written again after a remove. Except one point: RGW ignores If-None-Match on versioned buckets,
// so writers racing on one name may each store a version (the same bytes, for repository files,
// which are named by their hash); concurrent-same-name is skipped for that reason.
func TestConformanceObjectLock(t *testing.T) {
	srv := rgwtest.Get(t)
	storetest.Run(t, func(t *testing.T) store.Backend {
		if strings.HasSuffix(t.Name(), "/concurrent-same-name") {
			t.Skip("RGW ignores If-None-Match on versioned buckets: racing writers of one name both store a version")
		}
		return newStore(t, srv, s3store.Options{PartSize: 5 << 20, LockFor: 24 * time.Hour})
	})
}

// TestObjectLockKeepsRemovedFiles: with a 1-day lock, a file removed through the store (prune,
// forget, or a thief with the keys) is only hidden; deleting its version is refused by the
// server; Undelete brings it back; Retain extends its date; Cleanup leaves a retained version.
// A store opened later without the flag learns the retention from the bucket.
func TestObjectLockKeepsRemovedFiles(t *testing.T) {
	srv := rgwtest.Get(t)
	ctx := context.Background()
	s := newStore(t, srv, s3store.Options{LockFor: 24 * time.Hour})
	if err := s.Create(ctx); err != nil {
		t.Fatal(err)
	}
	later := newStore(t, srv, s3store.Options{Bucket: s.Bucket()})
	if d, err := later.Retention(ctx); err != nil || d != 24*time.Hour {
		t.Fatalf("retention read from the bucket: %s, %v; want 24h", d, err)
	}
	h := store.Handle{Kind: store.KindData, Name: storetest.Name(1)}
	data := storetest.Data(1, 200_000)
	start := time.Now()
	if err := later.Save(ctx, h, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	until, err := later.RetainedUntil(ctx, h)
	if err != nil || until.Before(start.Add(23*time.Hour)) {
		t.Fatalf("retained until %s (%v), want a day from now", until, err)
	}
	if err := later.Remove(ctx, h); err != nil {
		t.Fatalf("remove (a prune): %v", err)
	}
	if _, err := later.Stat(ctx, h); !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("removed file still visible: %v", err)
	}

	// The thief's way: delete every version by id. The retained one is refused.
	cl := later.Client()
	refused := 0
	for v := range cl.ListObjects(ctx, s.Bucket(), minio.ListObjectsOptions{Prefix: "repo/data/", Recursive: true, WithVersions: true}) {
		if v.Err != nil {
			t.Fatal(v.Err)
		}
		if v.IsDeleteMarker {
			continue
		}
		if err := cl.RemoveObject(ctx, s.Bucket(), v.Key, minio.RemoveObjectOptions{VersionID: v.VersionID}); err == nil {
			t.Errorf("deleting retained version %s of %s succeeded", v.VersionID, v.Key)
		} else {
			refused++
		}
	}
	if refused != 1 {
		t.Fatalf("%d retained versions refused deletion, want 1", refused)
	}
	if n, err := later.Cleanup(ctx); err != nil || n != 0 {
		t.Errorf("cleanup removed %d (%v) while the version is retained", n, err)
	}
	if n, err := later.Undelete(ctx, start); err != nil || n != 1 {
		t.Fatalf("undelete: %d, %v; want 1 file back", n, err)
	}
	if got := loadAll(t, later, h); !bytes.Equal(got, data) {
		t.Fatal("undeleted file differs")
	}
	if err := later.Retain(ctx, h, start.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if until, err := later.RetainedUntil(ctx, h); err != nil || until.Before(start.Add(47*time.Hour)) {
		t.Errorf("after Retain: retained until %s (%v), want two days", until, err)
	}
}

// TestObjectLockNeedsLockBucket: init with a lock on a bucket made without Object Lock fails
// with a message saying to use a new bucket.
func TestObjectLockNeedsLockBucket(t *testing.T) {
	srv := rgwtest.Get(t)
	s := newStore(t, srv, s3store.Options{Bucket: srv.Bucket(t, false), LockFor: 24 * time.Hour})
	err := s.Create(context.Background())
	if !errors.Is(err, s3store.ErrPermanent) {
		t.Errorf("create with a lock on a plain bucket: %v, want a permanent error", err)
	}
}
