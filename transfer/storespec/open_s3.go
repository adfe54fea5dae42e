package storespec

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"time"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/metacache"
	"github.com/snapferry/snapferry/transfer/ratelimit"
	"github.com/snapferry/snapferry/transfer/s3store"
)

// S3Options are the --s3-* flags. Credentials are not among them: they come from the
// environment or a credentials file (see transfer/s3store), never from the command line.
type S3Options struct {
	InsecureHTTP bool   // --s3-insecure-http: plain http, for a private network
	CAFile       string // --s3-ca-file: PEM certificates to trust besides the system's
	Region       string // --s3-region ("" = us-east-1)
	Connections  int    // --s3-connections: requests in flight at once (0 = 8)
	// Limiter paces the bytes sent (--bwlimit), request body by request body; nil = no limit.
	Limiter *ratelimit.Limiter
	// LockFor is init's --s3-object-lock: every object is written with this retention.
	LockFor time.Duration
	// MetaCache, if set, is a folder where index and snapshot files are cached (images/store/
	// metacache), one subfolder per repository location, so later commands fetch only new ones.
	MetaCache string
}

func openS3(s Spec, o S3Options) (store.Backend, error) {
	be, err := s3store.New(s3store.Options{
		Endpoint:     s.Endpoint(),
		Bucket:       s.Bucket(),
		Prefix:       s.Prefix(),
		InsecureHTTP: o.InsecureHTTP,
		CAFile:       o.CAFile,
		Region:       o.Region,
		Connections:  o.Connections,
		LockFor:      o.LockFor,
		Limiter:      o.Limiter,
	})
	if err != nil {
		return nil, err
	}
	return cached(be, s, o.MetaCache), nil
}

// cached puts be behind a metadata cache in a subfolder of dir named by the store's location
// (be itself when dir is "").
func cached(be store.Backend, s Spec, dir string) store.Backend {
	if dir == "" {
		return be
	}
	sum := sha256.Sum256([]byte(s.String()))
	return metacache.New(be, filepath.Join(dir, hex.EncodeToString(sum[:8])))
}
