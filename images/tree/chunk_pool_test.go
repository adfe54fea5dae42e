package tree

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The chunk buffers bound what a backup holds in flight: never more than n out at once, a
// returned buffer is what the next chunk gets, and a chunk larger than the pool's buffers gets
// one of its own that the pool does not keep.
func TestChunkPoolBoundsAndReusesBuffers(t *testing.T) {
	ctx := context.Background()
	p := newChunkPool(2, 100)
	a, err := p.get(ctx, 60)
	if err != nil || len(a) != 60 || cap(a) != 100 {
		t.Fatalf("get(60) = len %d cap %d, %v; want 60/100", len(a), cap(a), err)
	}
	big, err := p.get(ctx, 150)
	if err != nil || len(big) != 150 {
		t.Fatalf("get(150) = len %d, %v", len(big), err)
	}
	// Both are out: a third waits until its context ends.
	short, cancel := context.WithTimeoutCause(ctx, 50*time.Millisecond, errors.New("no buffer"))
	defer cancel()
	if b, err := p.get(short, 10); err == nil {
		t.Fatalf("third get with 2 out returned a buffer of %d bytes, want it to wait", len(b))
	}
	p.put(a)
	b, err := p.get(ctx, 100)
	if err != nil || &b[0] != &a[0] {
		t.Fatalf("get after put: %v; want the returned buffer again", err)
	}
	p.put(big) // frees its slot but is not kept
	if len(p.free) != 0 {
		t.Fatalf("pool kept %d buffers after the oversized one came back, want 0", len(p.free))
	}
	c, err := p.get(ctx, 10)
	if err != nil || cap(c) != 100 || &c[0] == &big[0] {
		t.Fatalf("get after the oversized put: cap %d, %v; want a fresh pool-sized buffer", cap(c), err)
	}
}
