package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"io"

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

// SaveStream is never passed through, even when the wrapped store streams: the bytes of a
// streamed save would go to the store unpaced. errors.ErrUnsupported makes the repository spool
// the file and use Save, which is rate limited; a --bwlimit run keeps working that way.
func (b *limitedBackend) SaveStream(ctx context.Context, k store.Kind) (store.Pending, error) {
	return nil, fmt.Errorf("stream save %s on %s: uploads are rate limited (--bwlimit) through save only: %w",
		k, b.Location(), errors.ErrUnsupported)
}

// Unwrap returns the limited store (callers looking for a wire session below it).
func (b *limitedBackend) Unwrap() store.Backend { return b.Backend }

// FreeSpace passes through when the wrapped store can report it.
func (b *limitedBackend) FreeSpace(ctx context.Context) (int64, error) {
	if sr, ok := b.Backend.(store.SpaceReporter); ok {
		return sr.FreeSpace(ctx)
	}
	return -1, nil
}
