package s3store

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/minio/minio-go/v7"

	"github.com/snapferry/snapferry/images/store"
)

// ErrPermanent is wrapped by errors no retry can mend: access denied, a missing bucket, bad
// credentials. minio-go does not retry them; callers should not either.
var ErrPermanent = errors.New("permanent S3 error")

// wrap turns a minio error into one that names the operation, the object and what to do, and
// matches the store's sentinel errors (ErrNotExist, ErrExist, ErrNoSpace) and ErrPermanent.
func (s *Store) wrap(op, what string, err error) error {
	if err == nil {
		return nil
	}
	if what != "" {
		op += " " + what
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s on %s: %w", op, s.location, err)
	}
	r := minio.ToErrorResponse(err)
	switch {
	case r.Code == "NoSuchKey" || (r.StatusCode == http.StatusNotFound && r.Code != "NoSuchBucket" && r.Code != "NoSuchUpload"):
		return fmt.Errorf("%s on %s: %w", op, s.location, store.ErrNotExist)
	case r.Code == "PreconditionFailed" || r.StatusCode == http.StatusPreconditionFailed:
		return fmt.Errorf("%s on %s: %w", op, s.location, store.ErrExist)
	case r.Code == "NoSuchBucket":
		return fmt.Errorf("%s on %s: bucket %q does not exist on %s (create it, or run `snapferry init` to create it): %w",
			op, s.location, s.o.Bucket, s.o.Endpoint, ErrPermanent)
	case r.Code == "InvalidAccessKeyId" || r.Code == "SignatureDoesNotMatch":
		return fmt.Errorf("%s on %s: the server refused the credentials (%s): check AWS_ACCESS_KEY_ID and "+
			"AWS_SECRET_ACCESS_KEY or the credentials file: %w", op, s.location, r.Code, ErrPermanent)
	case r.Code == "AccessDenied" || r.StatusCode == http.StatusForbidden:
		msg := r.Message
		if msg == "" {
			msg = r.Code
		}
		return fmt.Errorf("%s on %s: access denied (%s); the key lacks permission for this bucket, or Object Lock "+
			"protects the object: %w", op, s.location, msg, ErrPermanent)
	case r.Code == "QuotaExceeded" || r.Code == "InsufficientCapacity":
		return fmt.Errorf("%s on %s: %s: %w", op, s.location, r.Code, store.ErrNoSpace)
	}
	return fmt.Errorf("%s on %s: %w", op, s.location, err)
}
