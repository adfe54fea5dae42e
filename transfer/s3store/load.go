package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/snapferry/snapferry/images/store"
)

// resumes is how many times one Load's body is reopened after its connection broke.
const resumes = 5

// Load opens h from offset; length <= 0 reads to the end. A connection cut while the body
// streams is reopened at the byte where it stopped (a long pack read survives a reset proxy).
func (s *Store) Load(ctx context.Context, h store.Handle, offset, length int64) (io.ReadCloser, error) {
	if err := store.CheckLoad(ctx, h, offset); err != nil {
		return nil, err
	}
	r := &resumingReader{ctx: ctx, s: s, h: h, off: offset, left: -1}
	if length > 0 {
		r.left = length
	}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

// resumingReader is the body of one Load: it reopens the object at the current offset when a
// read fails with anything but EOF or the caller's cancellation.
type resumingReader struct {
	ctx     context.Context
	s       *Store
	h       store.Handle
	off     int64 // next byte to read
	left    int64 // bytes still wanted; -1 = to the end
	body    io.ReadCloser
	retries int
}

func (r *resumingReader) open() error {
	var o minio.GetObjectOptions
	switch {
	case r.left > 0:
		if err := o.SetRange(r.off, r.off+r.left-1); err != nil {
			return fmt.Errorf("load %s: %w", r.h, err)
		}
	case r.off > 0:
		if err := o.SetRange(r.off, 0); err != nil {
			return fmt.Errorf("load %s: %w", r.h, err)
		}
	}
	body, _, _, err := r.s.core.GetObject(r.ctx, r.s.o.Bucket, r.s.key(r.h), o)
	if err != nil {
		if minio.ToErrorResponse(err).Code == "InvalidRange" {
			// A range starting at the end (or in an empty file): nothing to read, if the file is there.
			if _, serr := r.s.Stat(r.ctx, r.h); serr != nil {
				return fmt.Errorf("load: %w", serr)
			}
			r.body = io.NopCloser(eofReader{})
			return nil
		}
		return r.s.wrap("load", r.h.String(), err)
	}
	r.body = body
	return nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

func (r *resumingReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	if r.left > 0 && int64(len(p)) > r.left {
		p = p[:r.left]
	}
	for {
		n, err := r.body.Read(p)
		r.off += int64(n)
		if r.left > 0 {
			r.left -= int64(n)
		}
		if err == nil || n > 0 {
			if errors.Is(err, io.EOF) && r.left > 0 {
				err = nil // a short body: the next Read reopens and finds out why
				r.retryAfterShort()
			}
			return n, err
		}
		if errors.Is(err, io.EOF) {
			if r.left > 0 {
				return 0, fmt.Errorf("load %s on %s: object ended %d bytes early: %w", r.h, r.s.location, r.left, io.ErrUnexpectedEOF)
			}
			return 0, io.EOF
		}
		if r.ctx.Err() != nil || r.retries >= resumes {
			return 0, r.s.wrap("read", r.h.String(), err)
		}
		if rerr := r.reopen(); rerr != nil {
			return 0, rerr
		}
	}
}

// retryAfterShort marks a body that ended before the wanted length; the next Read reopens it.
func (r *resumingReader) retryAfterShort() {
	r.body.Close()
	r.body = errReader{}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }
func (errReader) Close() error             { return nil }

// reopen waits a moment (longer each time) and opens the object at the current offset.
func (r *resumingReader) reopen() error {
	r.body.Close()
	r.retries++
	t := time.NewTimer(time.Duration(r.retries*r.retries) * 100 * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.ctx.Done():
		return fmt.Errorf("read %s on %s: %w", r.h, r.s.location, r.ctx.Err())
	}
	return r.open()
}

func (r *resumingReader) Close() error { return r.body.Close() }
