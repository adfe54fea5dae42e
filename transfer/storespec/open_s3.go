package storespec

import (
	"time"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/transfer/s3store"
)

// S3Options are the --s3-* flags. Credentials are not among them: they come from the
// environment or a credentials file (see transfer/s3store), never from the command line.
type S3Options struct {
	InsecureHTTP bool   // --s3-insecure-http: plain http, for a private network
	CAFile       string // --s3-ca-file: PEM certificates to trust besides the system's
	Region       string // --s3-region ("" = us-east-1)
	Connections  int    // --s3-connections: requests in flight at once (0 = 8)
	// LockFor is init's --s3-object-lock: every object is written with this retention.
	LockFor time.Duration
}

func openS3(s Spec, o S3Options) (store.Backend, error) {
	return s3store.New(s3store.Options{
		Endpoint:     s.Endpoint(),
		Bucket:       s.Bucket(),
		Prefix:       s.Prefix(),
		InsecureHTTP: o.InsecureHTTP,
		CAFile:       o.CAFile,
		Region:       o.Region,
		Connections:  o.Connections,
		LockFor:      o.LockFor,
	})
}
