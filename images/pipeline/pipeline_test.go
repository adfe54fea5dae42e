package pipeline

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestGroupFirstErrorCancelsOthers(t *testing.T) {
	g := NewGroup(context.Background())
	boom := errors.New("boom")
	g.Go(func(ctx context.Context) error { return boom })
	g.GoWorkers(3, func(ctx context.Context) error {
		<-ctx.Done() // would hang forever without the cancel
		return context.Cause(ctx)
	}, nil)
	if err := g.Wait(); err != boom {
		t.Fatalf("Wait = %v, want the first error", err)
	}
}

func TestGroupParentCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	g := NewGroup(ctx)
	g.Go(func(ctx context.Context) error { <-ctx.Done(); return nil })
	cancel()
	if err := g.Wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
	if err := NewGroup(context.Background()).Wait(); err != nil {
		t.Fatalf("empty group: %v", err)
	}
}

func TestGoWorkersCallsLastOnce(t *testing.T) {
	g := NewGroup(context.Background())
	calls := 0
	ch := make(chan int)
	g.GoWorkers(4, func(ctx context.Context) error { ch <- 1; return nil }, func() { calls++; close(ch) })
	n := 0
	for v := range ch {
		n += v
	}
	if err := g.Wait(); err != nil || n != 4 || calls != 1 {
		t.Fatalf("err %v, %d sends, last called %d times", err, n, calls)
	}
}

func TestReorderReleasesInSequence(t *testing.T) {
	r := NewReorder[int]()
	var got []int
	emit := func(v int) error { got = append(got, v); return nil }
	for _, seq := range []uint64{2, 0, 3, 1, 5, 4} {
		if err := r.Push(seq, int(seq)*10, emit); err != nil {
			t.Fatal(err)
		}
	}
	want := []int{0, 10, 20, 30, 40, 50}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if len(r.pending) != 0 {
		t.Fatalf("%d results left pending", len(r.pending))
	}
}

func TestBufferPoolBlocksWhenEmpty(t *testing.T) {
	p := NewBufferPool(1, 8)
	b, err := p.Get(context.Background())
	if err != nil || len(b) != 8 {
		t.Fatalf("Get: %d bytes, %v", len(b), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Get(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get on an empty pool with a cancelled context: %v", err)
	}
	p.Put(b[:3])
	if b, _ := p.Get(context.Background()); len(b) != 8 {
		t.Fatalf("a returned buffer comes back at full length, got %d", len(b))
	}
}

func TestBufferPoolMakesBuffersOnDemandAndReusesThem(t *testing.T) {
	p := NewBufferPool(2, 8)
	if len(p.free) != 0 || len(p.slots) != 2 {
		t.Fatalf("a new pool holds %d buffers and %d unmade slots; want none made yet", len(p.free), len(p.slots))
	}
	a, _ := p.Get(context.Background())
	p.Put(a)
	b, _ := p.Get(context.Background())
	if &a[0] != &b[0] || len(p.slots) != 1 {
		t.Fatalf("a returned buffer was not reused (%d slots left)", len(p.slots))
	}
	c, _ := p.Get(context.Background())
	if &c[0] == &b[0] || len(p.slots) != 0 {
		t.Fatal("the second buffer in flight should be a new one")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := p.Get(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a third Get with two buffers out must wait: %v", err)
	}
}
