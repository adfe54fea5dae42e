package ratelimit

import (
	"context"
	"io"
)

// Reader paces reads from an io.Reader.
type Reader struct {
	ctx context.Context
	r   io.Reader
	l   *Limiter
}

// NewReader returns r paced by l; waits end when ctx does.
func NewReader(ctx context.Context, r io.Reader, l *Limiter) *Reader {
	return &Reader{ctx: ctx, r: r, l: l}
}

// Read reads at most one burst and then waits until the limiter has paid for what was read.
func (r *Reader) Read(p []byte) (int, error) {
	if b := r.l.Burst(); b > 0 && len(p) > b {
		p = p[:b]
	}
	n, err := r.r.Read(p)
	if werr := r.l.WaitN(r.ctx, n); werr != nil && err == nil {
		err = werr
	}
	return n, err
}

// ReadSeeker paces reads like Reader and passes Seek through: an upload body that an HTTP
// client rewinds to send again after a failed try (s3:// parts), paying again for bytes resent.
type ReadSeeker struct {
	Reader
	s io.Seeker
}

// NewReadSeeker returns rs paced by l; waits end when ctx does.
func NewReadSeeker(ctx context.Context, rs io.ReadSeeker, l *Limiter) *ReadSeeker {
	return &ReadSeeker{Reader: Reader{ctx: ctx, r: rs, l: l}, s: rs}
}

// Seek moves the underlying reader.
func (r *ReadSeeker) Seek(offset int64, whence int) (int64, error) { return r.s.Seek(offset, whence) }

// Writer paces writes to an io.Writer.
type Writer struct {
	ctx context.Context
	w   io.Writer
	l   *Limiter
}

// NewWriter returns w paced by l; waits end when ctx does.
func NewWriter(ctx context.Context, w io.Writer, l *Limiter) *Writer {
	return &Writer{ctx: ctx, w: w, l: l}
}

// Write passes p on in bursts, waiting for the limiter before each.
func (w *Writer) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		chunk := p[done:]
		if b := w.l.Burst(); b > 0 && len(chunk) > b {
			chunk = chunk[:b]
		}
		if err := w.l.WaitN(w.ctx, len(chunk)); err != nil {
			return done, err
		}
		n, err := w.w.Write(chunk)
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}
