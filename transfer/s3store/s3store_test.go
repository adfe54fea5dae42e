package s3store_test

import (
	"testing"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/storetest"
	"github.com/snapferry/snapferry/transfer/s3store"
	"github.com/snapferry/snapferry/transfer/s3store/rgwtest"
)

// newStore opens a store on a fresh bucket of the test RGW, below a prefix so the layout's
// joins are exercised; o's endpoint, bucket, keys and http are filled in.
func newStore(t *testing.T, srv rgwtest.Server, o s3store.Options) *s3store.Store {
	t.Helper()
	o.Endpoint = srv.Endpoint
	if o.Bucket == "" {
		o.Bucket = srv.Bucket(t, o.LockFor > 0)
	}
	if o.Prefix == "" {
		o.Prefix = "repo"
	}
	o.InsecureHTTP = true
	o.Credentials = srv.Credentials()
	s, err := s3store.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConformance runs the store suite against a real RGW, with the smallest part size S3 allows
// so the suite's large files go through multipart uploads.
func TestConformance(t *testing.T) {
	srv := rgwtest.Get(t)
	storetest.Run(t, func(t *testing.T) store.Backend {
		return newStore(t, srv, s3store.Options{PartSize: 5 << 20})
	})
}
