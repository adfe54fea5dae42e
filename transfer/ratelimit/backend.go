package ratelimit

import (
	"context"
	"io"
	"time"

	"github.com/snapferry/snapferry/images/store"
)

// limitedBackend slows the uploads of a store to the limiter's rate (--bwlimit). Reads are not
// limited: the flag protects a shared uplink from a backup, not a restore someone waits for.
type limitedBackend struct {
	store.Backend
	l *Limiter
}

var _ store.StreamSaver = (*limitedBackend)(nil)

// Backend wraps be so that every Save streams at most at l's rate, shared by all concurrent
// uploads. A nil limiter returns be unchanged.
func Backend(be store.Backend, l *Limiter) store.Backend {
	if l == nil {
		return be
	}
	return &limitedBackend{Backend: be, l: l}
}

func (b *limitedBackend) Save(ctx context.Context, h store.Handle, rd io.Reader) error {
	return b.Backend.Save(ctx, h, NewReader(ctx, rd, b.l))
}

// SaveStream passes a streamed save through with its writes paced by the same limiter as Save,
// so packs still go straight into the store under --bwlimit. A wrapped store that cannot stream
// answers errors.ErrUnsupported, and the repository falls back to the paced Save.
func (b *limitedBackend) SaveStream(ctx context.Context, k store.Kind) (store.Pending, error) {
	p, err := store.StartStream(ctx, b.Backend, k)
	if err != nil {
		return nil, err
	}
	return &limitedPending{Pending: p, w: NewWriter(ctx, p, b.l)}, nil
}

// limitedPending paces the writes of a streamed save; Commit and Abort pass through.
type limitedPending struct {
	store.Pending
	w *Writer
}

func (p *limitedPending) Write(b []byte) (int, error) { return p.w.Write(b) }

// Unwrap returns the limited store (callers looking for a wire session below it).
func (b *limitedBackend) Unwrap() store.Backend { return b.Backend }

// FreeSpace passes through when the wrapped store can report it.
func (b *limitedBackend) FreeSpace(ctx context.Context) (int64, error) {
	if sr, ok := b.Backend.(store.SpaceReporter); ok {
		return sr.FreeSpace(ctx)
	}
	return -1, nil
}

// CleanTemp passes through when the wrapped store has temp files to tell about.
func (b *limitedBackend) CleanTemp(ctx context.Context, before time.Time) (store.TempReport, error) {
	if tc, ok := b.Backend.(store.TempCleaner); ok {
		return tc.CleanTemp(ctx, before)
	}
	return store.TempReport{}, nil
}
