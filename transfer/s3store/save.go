package s3store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/snapferry/snapferry/images/store"
)

// partsInFlight is how many parts of one multipart upload from a source read into memory (one
// that cannot be read in place, see save_source.go) are sent at once: each holds a part's bytes.
const partsInFlight = 2

// Save writes h from rd: one conditional PutObject when rd holds less than one part, otherwise a
// multipart upload. Either way nothing is visible under h's name unless the whole file arrived.
// A source that can be read in place (a file, a bytes.Reader: see save_source.go) is sent from
// where it is; any other is read a part at a time into memory.
func (s *Store) Save(ctx context.Context, h store.Handle, rd io.Reader) error {
	if err := store.Validate(h); err != nil {
		return fmt.Errorf("save %s: %w", h, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("save %s: %w", h, err)
	}
	if src, off, size, ok := sizedSource(rd); ok {
		return s.saveSource(ctx, h, src, off, size)
	}
	first, err := readPart(rd, s.o.PartSize)
	if err != nil {
		return fmt.Errorf("save %s: read source: %w", h, err)
	}
	if int64(len(first)) < s.o.PartSize {
		if err := s.refuseOnLockedBucket(ctx, h); err != nil {
			return err
		}
		return s.putSmall(ctx, h, s.body(ctx, section{src: bytes.NewReader(first), size: int64(len(first))}), int64(len(first)), sha256Hex(first))
	}
	return s.multipart(ctx, h, func(ctx context.Context, id string) ([]minio.CompletePart, error) {
		return s.sendParts(ctx, h, id, first, rd)
	})
}

// refuseOnLockedBucket checks that h does not exist on an Object Lock bucket before a single
// PutObject: RGW ignores If-None-Match on a versioned bucket (every Object Lock bucket is one).
// Two writers racing past the check both store a version; repository files are named by the
// hash of their bytes, so both hold the same bytes (docs/object-storage.md).
func (s *Store) refuseOnLockedBucket(ctx context.Context, h store.Handle) error {
	d, err := s.Retention(ctx)
	if err != nil {
		return err
	}
	if d > 0 {
		return s.refuseExisting(ctx, h)
	}
	return nil
}

// readPart reads up to n bytes; a short result means rd ended. The buffer grows to what rd
// holds (a lock file is a few hundred bytes) and is never more than n: bytes.Buffer would
// double a full part to 2n.
func readPart(rd io.Reader, n int64) ([]byte, error) {
	const step = 256 << 10
	var buf []byte
	for int64(len(buf)) < n {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, int(min(n, max(int64(2*cap(buf)), step)))-len(buf))
		}
		m, err := rd.Read(buf[len(buf):min(int64(cap(buf)), n)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// putOptions are the options of every object write. Retention needs none: an Object Lock
// bucket applies its default retention to every version (lock.go).
func (s *Store) putOptions() minio.PutObjectOptions {
	// The body's SHA-256 is computed here and signed, instead of minio-go's streaming signature
	// over plain http, which RGW rejects for an empty body; the server checks it either way.
	return minio.PutObjectOptions{ContentType: "application/octet-stream", DisableMultipart: true, DisableContentSha256: true}
}

// putSmall stores body (size bytes with SHA-256 sum) as h in one request, refused by the server
// if h exists (If-None-Match: *), so concurrent writers of one name cannot both win.
func (s *Store) putSmall(ctx context.Context, h store.Handle, body io.Reader, size int64, sum string) error {
	o := s.putOptions()
	o.SetMatchETagExcept("*")
	_, err := s.core.PutObject(ctx, s.o.Bucket, s.key(h), body, size, "", sum, o)
	return s.wrap("save", h.String(), err)
}

// multipart runs a multipart upload of h whose parts send uploads, and aborts it on any failure
// (also a cancelled context), so the server keeps no orphan parts.
func (s *Store) multipart(ctx context.Context, h store.Handle, send func(ctx context.Context, id string) ([]minio.CompletePart, error)) error {
	key := s.key(h)
	if err := s.refuseExisting(ctx, h); err != nil {
		return err
	}
	o := s.putOptions()
	o.DisableMultipart = false
	id, err := s.core.NewMultipartUpload(ctx, s.o.Bucket, key, o)
	if err != nil {
		return s.wrap("start upload of", h.String(), err)
	}
	parts, err := send(ctx, id)
	if err == nil {
		err = s.refuseExisting(ctx, h)
	}
	if err == nil {
		// The ETag RGW answers here may be empty (Ceph tracker 58879); nothing relies on it.
		_, err = s.core.CompleteMultipartUpload(ctx, s.o.Bucket, key, id, parts, o)
		err = s.wrap("complete upload of", h.String(), err)
	}
	if err != nil {
		s.abort(key, id)
		return err
	}
	return nil
}

// refuseExisting returns ErrExist when h is stored already. Multipart completion takes no
// condition on RGW, so this is asked before the upload starts and before it completes; only
// packs are large enough to get here, and two writers of one pack name write the same bytes.
func (s *Store) refuseExisting(ctx context.Context, h store.Handle) error {
	_, err := s.Stat(ctx, h)
	switch {
	case err == nil:
		return fmt.Errorf("save %s on %s: %w", h, s.location, store.ErrExist)
	case errors.Is(err, store.ErrNotExist):
		return nil
	}
	return fmt.Errorf("save: %w", err)
}

// abort drops an unfinished upload. It runs after the caller's context may have ended, so it
// gets its own deadline.
func (s *Store) abort(key, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = s.core.AbortMultipartUpload(ctx, s.o.Bucket, key, id)
}

// sendParts uploads first and then the rest of rd in parts of PartSize, partsInFlight at a
// time. Each part is a byte slice, so minio-go can resend it when a try fails transiently.
func (s *Store) sendParts(ctx context.Context, h store.Handle, id string, first []byte, rd io.Reader) ([]minio.CompletePart, error) {
	buf, ended := first, false
	next := func() (section, bool, error) {
		if buf == nil {
			if ended {
				return section{}, false, nil
			}
			b, err := readPart(rd, s.o.PartSize)
			if err != nil {
				return section{}, false, fmt.Errorf("save %s: read source: %w", h, err)
			}
			if len(b) == 0 {
				return section{}, false, nil
			}
			buf = b
		}
		sec := section{src: bytes.NewReader(buf), size: int64(len(buf))}
		ended = int64(len(buf)) < s.o.PartSize
		buf = nil
		return sec, true, nil
	}
	return s.sendSections(ctx, h, id, partsInFlight, next)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
