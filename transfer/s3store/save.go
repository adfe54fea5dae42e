package s3store

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/snapferry/snapferry/images/store"
)

// partsInFlight is how many parts of one multipart upload are sent at once. With the default part
// size a 32 MiB pack is two parts sent together; more would only hold more memory per pack.
const partsInFlight = 2

// Save writes h from rd: one conditional PutObject when rd ends within one part, otherwise a
// multipart upload. Either way nothing is visible under h's name unless the whole file arrived.
func (s *Store) Save(ctx context.Context, h store.Handle, rd io.Reader) error {
	if err := store.Validate(h); err != nil {
		return fmt.Errorf("save %s: %w", h, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("save %s: %w", h, err)
	}
	first, err := readPart(rd, s.o.PartSize)
	if err != nil {
		return fmt.Errorf("save %s: read source: %w", h, err)
	}
	if int64(len(first)) < s.o.PartSize {
		// RGW ignores If-None-Match on a versioned bucket (every Object Lock bucket is one):
		// there the name is checked first. Two writers racing past the check both store a
		// version; repository files are named by the hash of their bytes, so both hold the
		// same bytes (docs/object-storage.md).
		if d, err := s.Retention(ctx); err != nil {
			return err
		} else if d > 0 {
			if err := s.refuseExisting(ctx, h); err != nil {
				return err
			}
		}
		return s.putSmall(ctx, h, first)
	}
	return s.putMultipart(ctx, h, first, rd)
}

// readPart reads up to n bytes; a short result means rd ended.
func readPart(rd io.Reader, n int64) ([]byte, error) {
	var buf bytes.Buffer
	_, err := io.Copy(&buf, io.LimitReader(rd, n))
	return buf.Bytes(), err
}

// putOptions are the options of every object write. Retention needs none: an Object Lock
// bucket applies its default retention to every version (lock.go).
func (s *Store) putOptions() minio.PutObjectOptions {
	// The body's SHA-256 is computed here and signed, instead of minio-go's streaming signature
	// over plain http, which RGW rejects for an empty body; the server checks it either way.
	return minio.PutObjectOptions{ContentType: "application/octet-stream", DisableMultipart: true, DisableContentSha256: true}
}

// putSmall stores b as h in one request, refused by the server if h exists (If-None-Match: *),
// so concurrent writers of one name cannot both win.
func (s *Store) putSmall(ctx context.Context, h store.Handle, b []byte) error {
	o := s.putOptions()
	o.SetMatchETagExcept("*")
	_, err := s.core.PutObject(ctx, s.o.Bucket, s.key(h), bytes.NewReader(b), int64(len(b)), "", sha256Hex(b), o)
	return s.wrap("save", h.String(), err)
}

// putMultipart sends first and the rest of rd as the parts of a multipart upload of h, and aborts
// the upload on any failure (also a cancelled context), so the server keeps no orphan parts.
func (s *Store) putMultipart(ctx context.Context, h store.Handle, first []byte, rd io.Reader) error {
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
	parts, err := s.sendParts(ctx, h, id, first, rd)
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

// sendParts uploads first and then rd in parts of PartSize, partsInFlight at a time. Each part
// is a byte slice, so minio-go can resend it when a try fails transiently.
func (s *Store) sendParts(ctx context.Context, h store.Handle, id string, first []byte, rd io.Reader) ([]minio.CompletePart, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		parts    []minio.CompletePart
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
		mu.Unlock()
	}
	slots := make(chan struct{}, partsInFlight)
	key := s.key(h)
	buf := first
	for n := 1; ; n++ {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(n int, b []byte) {
			defer wg.Done()
			defer func() { <-slots }()
			p, err := s.core.PutObjectPart(ctx, s.o.Bucket, key, id, n, bytes.NewReader(b), int64(len(b)),
				minio.PutObjectPartOptions{Sha256Hex: sha256Hex(b), DisableContentSha256: true})
			if err != nil {
				fail(s.wrap(fmt.Sprintf("upload part %d of", n), h.String(), err))
				return
			}
			mu.Lock()
			parts = append(parts, minio.CompletePart{PartNumber: n, ETag: p.ETag})
			mu.Unlock()
		}(n, buf)
		if int64(len(buf)) < s.o.PartSize {
			break
		}
		next, err := readPart(rd, s.o.PartSize)
		if err != nil {
			fail(fmt.Errorf("save %s: read source: %w", h, err))
			break
		}
		if len(next) == 0 {
			break
		}
		buf = next
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = fmt.Errorf("save %s on %s: %w", h, s.location, ctx.Err())
	}
	if firstErr != nil {
		return nil, firstErr
	}
	slices.SortFunc(parts, func(a, b minio.CompletePart) int { return cmp.Compare(a.PartNumber, b.PartNumber) })
	return parts, nil
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
