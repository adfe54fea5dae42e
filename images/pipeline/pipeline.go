package pipeline

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
)

// Group runs the goroutines of one pipeline: the first error cancels the shared context so
// every stage stops at its next channel operation, and Wait returns that first error.
type Group struct {
	parent context.Context
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
	once   sync.Once
	err    error
}

func NewGroup(ctx context.Context) *Group {
	g := &Group{parent: ctx}
	g.ctx, g.cancel = context.WithCancelCause(ctx)
	return g
}

func (g *Group) Go(f func(ctx context.Context) error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := f(g.ctx); err != nil {
			g.once.Do(func() { g.err = err })
			g.cancel(err)
		}
	}()
}

// GoWorkers runs n copies of f and calls last once after all of them returned (to close the
// channel they feed), whether they failed or not.
func (g *Group) GoWorkers(n int, f func(ctx context.Context) error, last func()) {
	var live atomic.Int32
	live.Store(int32(n))
	for range n {
		g.Go(func(ctx context.Context) error {
			defer func() {
				if live.Add(-1) == 0 && last != nil {
					last()
				}
			}()
			return f(ctx)
		})
	}
}

// Wait waits for all goroutines and returns the first error, or the parent context's error
// when the run was cancelled from outside.
func (g *Group) Wait() error {
	g.wg.Wait()
	g.cancel(nil)
	if g.err != nil {
		return g.err
	}
	return context.Cause(g.parent)
}

// BufferPool hands out at most n buffers of one size; taking blocks while all are in flight,
// which is what bounds a pipeline's memory. Buffers are made on first demand, so a pool sized
// for the worst case costs nothing while the work is lighter (a file-tree backup without large
// files never touches its 4 MiB chunk buffers).
type BufferPool struct {
	free  chan []byte
	slots chan struct{} // one token per buffer not made yet
	size  int
}

func NewBufferPool(n, size int) *BufferPool {
	p := &BufferPool{free: make(chan []byte, n), slots: make(chan struct{}, n), size: size}
	for range n {
		p.slots <- struct{}{}
	}
	return p
}

func (p *BufferPool) Get(ctx context.Context) ([]byte, error) {
	select {
	case b := <-p.free:
		return b[:cap(b)], nil
	default:
	}
	select {
	case b := <-p.free:
		return b[:cap(b)], nil
	case <-p.slots:
		return make([]byte, p.size), nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

func (p *BufferPool) Put(b []byte) { p.free <- b }

// Reorder releases results in sequence order although Workers finish out of order. It holds
// only results that overtook an earlier one, so its size is bounded by the work in flight.
type Reorder[T any] struct {
	next    uint64
	pending map[uint64]T
}

func NewReorder[T any]() *Reorder[T] { return &Reorder[T]{pending: map[uint64]T{}} }

// push accepts result seq and calls emit for every result that is now next in order.
func (r *Reorder[T]) Push(seq uint64, v T, emit func(T) error) error {
	r.pending[seq] = v
	for {
		v, ok := r.pending[r.next]
		if !ok {
			return nil
		}
		delete(r.pending, r.next)
		r.next++
		if err := emit(v); err != nil {
			return err
		}
	}
}

// Workers resolves a worker count: n when positive, else the number of CPUs (hashing and
// compression are CPU-bound; the ESXi shell often has only a few).
func Workers(n int) int {
	if n > 0 {
		return n
	}
	return max(1, runtime.NumCPU())
}

// IOWorkers resolves a worker count for work that waits on open/read as much as it computes
// (many small files): n when positive, else 4 per CPU, at most 32.
func IOWorkers(n int) int {
	if n > 0 {
		return n
	}
	return min(4*runtime.NumCPU(), 32)
}

// Send delivers v unless the pipeline is cancelled first.
func Send[T any](ctx context.Context, ch chan<- T, v T) error {
	select {
	case ch <- v:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
