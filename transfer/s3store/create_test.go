package s3store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/transfer/s3store"
	"github.com/snapferry/snapferry/transfer/s3store/rgwtest"
)

// init takes a missing or empty bucket/prefix only: a prefix holding someone's objects is
// refused with what was found, and nothing is written into it.
func TestCreateRefusesAPrefixWithObjects(t *testing.T) {
	srv := rgwtest.Get(t)
	ctx := context.Background()
	bucket := srv.Bucket(t, false)
	s := newStore(t, srv, s3store.Options{Bucket: bucket, Prefix: "photos"})
	cl := s.Client()
	for i := range 12 {
		if _, err := cl.PutObject(ctx, bucket, fmt.Sprintf("photos/2026/%d.jpg", i), bytes.NewReader([]byte("jpeg")), 4, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	err := s.Create(ctx)
	if !errors.Is(err, store.ErrExist) || !strings.Contains(err.Error(), "12 files") {
		t.Fatalf("Create in a prefix with 12 objects: %v", err)
	}
	empty := newStore(t, srv, s3store.Options{Bucket: bucket, Prefix: "fresh"})
	if err := empty.Create(ctx); err != nil {
		t.Fatalf("Create in an empty prefix: %v", err)
	}
}
