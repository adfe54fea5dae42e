package s3store_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/storetest"
	"github.com/snapferry/snapferry/transfer/s3store"
	"github.com/snapferry/snapferry/transfer/s3store/rgwtest"
)

// TestCleanupAbortsKilledUploads: the multipart upload of a writer killed mid-pack (kill -9: no
// abort ran) is aborted by Cleanup once it is older than an hour, and a young one, which may
// belong to a live writer, is kept. A finished file is never touched.
func TestCleanupAbortsKilledUploads(t *testing.T) {
	srv := rgwtest.Get(t)
	ctx := context.Background()
	s := newStore(t, srv, s3store.Options{})
	if err := s.Create(ctx); err != nil {
		t.Fatal(err)
	}
	kept := store.Handle{Kind: store.KindData, Name: storetest.Name(1)}
	if err := s.Save(ctx, kept, bytes.NewReader([]byte("pack"))); err != nil {
		t.Fatal(err)
	}
	core := minio.Core{Client: s.Client()}
	if _, err := core.NewMultipartUpload(ctx, s.Bucket(), "repo/data/ab/"+storetest.Name(2), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Cleanup(ctx); err != nil || n != 0 {
		t.Fatalf("cleanup of a young upload: %d removed, %v; want it kept", n, err)
	}
	later := newStore(t, srv, s3store.Options{Bucket: s.Bucket(), Now: func() time.Time { return time.Now().Add(2 * time.Hour) }})
	if n, err := later.Cleanup(ctx); err != nil || n != 1 {
		t.Fatalf("cleanup two hours later: %d removed, %v; want 1", n, err)
	}
	assertNoUploads(t, s)
	if _, err := s.Stat(ctx, kept); err != nil {
		t.Errorf("cleanup touched a stored file: %v", err)
	}
}
