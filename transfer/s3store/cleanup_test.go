package s3store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/storetest"
	"github.com/snapferry/snapferry/transfer/s3store"
	"github.com/snapferry/snapferry/transfer/s3store/rgwtest"
)

// TestCleanTempAbortsKilledUploads: the multipart upload of a writer killed mid-pack (kill -9: no
// abort ran) is counted as a temp file with the bytes of its parts, aborted by CleanTemp when it
// started before the time the repository names (its lock horizon), and kept when it started
// after it (a live writer's). A finished file is never touched; Cleanup leaves uploads alone.
func TestCleanTempAbortsKilledUploads(t *testing.T) {
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
	key := "repo/data/ab/" + storetest.Name(2)
	id, err := core.NewMultipartUpload(ctx, s.Bucket(), key, minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	part := storetest.Data(3, 5<<20)
	sum := sha256.Sum256(part)
	if _, err := core.PutObjectPart(ctx, s.Bucket(), key, id, 1, bytes.NewReader(part), int64(len(part)),
		minio.PutObjectPartOptions{Sha256Hex: hex.EncodeToString(sum[:]), DisableContentSha256: true}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Cleanup(ctx); err != nil || n != 0 {
		t.Fatalf("Cleanup: %d removed, %v; unfinished uploads are CleanTemp's", n, err)
	}
	if rep, err := s.CleanTemp(ctx, time.Time{}); err != nil || rep.Found != 1 || rep.BytesFound != int64(len(part)) || rep.Removed != 0 {
		t.Fatalf("CleanTemp(zero) = %+v, %v; want 1 upload of %d bytes counted, none aborted", rep, err, len(part))
	}
	if rep, err := s.CleanTemp(ctx, time.Now().Add(-time.Hour)); err != nil || rep.Removed != 0 {
		t.Fatalf("CleanTemp(an hour ago) = %+v, %v; want the younger upload kept", rep, err)
	}
	if rep, err := s.CleanTemp(ctx, time.Now().Add(time.Minute)); err != nil || rep.Removed != 1 || rep.BytesRemoved != int64(len(part)) {
		t.Fatalf("CleanTemp(now) = %+v, %v; want the upload aborted", rep, err)
	}
	assertNoUploads(t, s)
	if _, err := s.Stat(ctx, kept); err != nil {
		t.Errorf("CleanTemp touched a stored file: %v", err)
	}
}
