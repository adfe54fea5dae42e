package disk

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
)

// group runs the goroutines of one pipeline: the first error cancels the shared context so
// every stage stops at its next channel operation, and Wait returns that first error.
type group struct {
	parent context.Context
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
	once   sync.Once
	err    error
}

func newGroup(ctx context.Context) *group {
	g := &group{parent: ctx}
	g.ctx, g.cancel = context.WithCancelCause(ctx)
	return g
}

func (g *group) Go(f func(ctx context.Context) error) {
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
func (g *group) GoWorkers(n int, f func(ctx context.Context) error, last func()) {
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
func (g *group) Wait() error {
	g.wg.Wait()
	g.cancel(nil)
	if g.err != nil {
		return g.err
	}
	return context.Cause(g.parent)
}

// bufferPool hands out at most n buffers of one size; taking blocks while all are in flight,
// which is what bounds a pipeline's memory.
type bufferPool struct {
	free chan []byte
}

func newBufferPool(n, size int) *bufferPool {
	p := &bufferPool{free: make(chan []byte, n)}
	for range n {
		p.free <- make([]byte, size)
	}
	return p
}

func (p *bufferPool) get(ctx context.Context) ([]byte, error) {
	select {
	case b := <-p.free:
		return b[:cap(b)], nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

func (p *bufferPool) put(b []byte) { p.free <- b }

// reorder releases results in sequence order although workers finish out of order. It holds
// only results that overtook an earlier one, so its size is bounded by the work in flight.
type reorder[T any] struct {
	next    uint64
	pending map[uint64]T
}

func newReorder[T any]() *reorder[T] { return &reorder[T]{pending: map[uint64]T{}} }

// push accepts result seq and calls emit for every result that is now next in order.
func (r *reorder[T]) push(seq uint64, v T, emit func(T) error) error {
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

// workers resolves a worker count: n when positive, else the number of CPUs (hashing and
// compression are CPU-bound; the ESXi shell often has only a few).
func workers(n int) int {
	if n > 0 {
		return n
	}
	return max(1, runtime.NumCPU())
}

// send delivers v unless the pipeline is cancelled first.
func send[T any](ctx context.Context, ch chan<- T, v T) error {
	select {
	case ch <- v:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
