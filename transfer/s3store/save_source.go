package s3store

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/minio/minio-go/v7"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/transfer/ratelimit"
)

// A Save source the store can read at any offset and whose size it knows: the unlinked temp file
// a pack is built in, or the bytes of an index file or snapshot in memory. Such a file is sent
// in place: each part is read twice from the source (once for its SHA-256, which the request
// signs, once onto the wire, and again on a retry) and never copied into memory. Reading
// parts into buffers instead cost a part's size per part in flight; with 16 MiB parts, two
// parts of each of up to four packs uploading at once (and bytes.Buffer doubling each to
// 32 MiB) that was most of the 215-284 MiB an s3:// backup peaked at (docs/object-storage.md).

// sizedSource returns rd as a ReaderAt with the offset it stands at and the bytes left, when rd
// can be read in place.
func sizedSource(rd io.Reader) (io.ReaderAt, int64, int64, bool) {
	ra, ok := rd.(io.ReaderAt)
	sk, ok2 := rd.(io.Seeker)
	if !ok || !ok2 {
		return nil, 0, 0, false
	}
	cur, err := sk.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, 0, 0, false
	}
	end, err := sk.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, 0, 0, false
	}
	if _, err := sk.Seek(cur, io.SeekStart); err != nil || end < cur {
		return nil, 0, 0, false
	}
	return ra, cur, end - cur, true
}

// section is one byte range of a source: a part, or a whole small file.
type section struct {
	src       io.ReaderAt
	off, size int64
}

// reader is a fresh reader over the section: a Seeker, so minio-go rewinds it for a retry.
func (sec section) reader() *io.SectionReader { return io.NewSectionReader(sec.src, sec.off, sec.size) }

// sha256Hex hashes the section, read from the source (no copy of the bytes is kept).
func (sec section) sha256Hex() (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, sec.reader()); err != nil {
		return "", fmt.Errorf("read source: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// body is what a request sends: the section, paced under --bwlimit.
func (s *Store) body(ctx context.Context, sec section) io.Reader {
	if s.o.Limiter == nil {
		return sec.reader()
	}
	return ratelimit.NewReadSeeker(ctx, sec.reader(), s.o.Limiter)
}

// saveSource is Save of a source read in place: one conditional PutObject for a file smaller
// than a part, otherwise a multipart upload with every part read straight from the source.
func (s *Store) saveSource(ctx context.Context, h store.Handle, src io.ReaderAt, off, size int64) error {
	whole := section{src: src, off: off, size: size}
	if size < s.o.PartSize {
		if err := s.refuseOnLockedBucket(ctx, h); err != nil {
			return err
		}
		sum, err := whole.sha256Hex()
		if err != nil {
			return fmt.Errorf("save %s: %w", h, err)
		}
		return s.putSmall(ctx, h, s.body(ctx, whole), size, sum)
	}
	var parts []section
	for at := int64(0); at < size; at += s.o.PartSize {
		parts = append(parts, section{src: src, off: off + at, size: min(s.o.PartSize, size-at)})
	}
	return s.multipart(ctx, h, func(ctx context.Context, id string) ([]minio.CompletePart, error) {
		// As many parts at once as requests may run (--s3-connections; the transport holds
		// back the rest): a part read in place costs a socket in flight, no buffer.
		return s.sendSections(ctx, h, id, s.o.Connections, func() (section, bool, error) {
			if len(parts) == 0 {
				return section{}, false, nil
			}
			sec := parts[0]
			parts = parts[1:]
			return sec, true, nil
		})
	})
}

// sendSections uploads the parts next gives, numbered from 1, at most inFlight at a time, and
// returns them sorted for completion. The first failure cancels the parts still running.
func (s *Store) sendSections(ctx context.Context, h store.Handle, id string, inFlight int, next func() (section, bool, error)) ([]minio.CompletePart, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		done     []minio.CompletePart
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
	}
	slots := make(chan struct{}, inFlight)
	key := s.key(h)
	for n := 1; ; n++ {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		sec, ok, err := next()
		if err != nil {
			fail(err)
		}
		if !ok || err != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			p, err := s.sendPart(ctx, key, id, n, sec)
			if err != nil {
				fail(s.wrap(fmt.Sprintf("upload part %d of", n), h.String(), err))
				return
			}
			mu.Lock()
			done = append(done, p)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = fmt.Errorf("save %s on %s: %w", h, s.location, ctx.Err())
	}
	if firstErr != nil {
		return nil, firstErr
	}
	slices.SortFunc(done, func(a, b minio.CompletePart) int { return cmp.Compare(a.PartNumber, b.PartNumber) })
	return done, nil
}

// sendPart hashes one part from the source and sends it.
func (s *Store) sendPart(ctx context.Context, key, id string, n int, sec section) (minio.CompletePart, error) {
	sum, err := sec.sha256Hex()
	if err != nil {
		return minio.CompletePart{}, err
	}
	p, err := s.core.PutObjectPart(ctx, s.o.Bucket, key, id, n, s.body(ctx, sec), sec.size,
		minio.PutObjectPartOptions{Sha256Hex: sum, DisableContentSha256: true})
	if err != nil {
		return minio.CompletePart{}, err
	}
	return minio.CompletePart{PartNumber: n, ETag: p.ETag}, nil
}
