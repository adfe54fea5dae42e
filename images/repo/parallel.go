package repo

import (
	"context"
	"sync"
)

// storeWorkers is how many requests maintenance work keeps in flight: over SSH each Load is a
// round trip, and reading pack headers or snapshots one at a time would be latency-bound.
const storeWorkers = 4

// storeAhead is how many whole small files (index files, snapshots, locks) are read at once where
// each is needed anyway: on ssh:// they share one link and its request limit (16 streams), on
// s3:// the store's connection pool; locally it costs nothing.
const storeAhead = 8

// forEachParallel calls fn(i) for i in [0, n) on up to workers goroutines and returns the first
// error; after an error or cancellation no new calls start.
func forEachParallel(ctx context.Context, workers, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		next  int
		first error
		wg    sync.WaitGroup
	)
	for w := 0; w < min(workers, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil || i >= n
				mu.Unlock()
				if stop {
					return
				}
				if err := ctx.Err(); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
				if err := fn(ctx, i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// forEachInOrder calls load(i) for i in [0, n) with up to ahead calls in flight and use(i, v,
// err) with their results in index order, one at a time: the round trips of reading many small
// files over a link overlap, while whoever uses them still sees them in the order that matters
// (index files in arrival order decide which copy of a duplicated blob the index uses). At most
// ahead results wait for use at once. An error from use, or ctx ending, stops the walk; loads
// still in flight finish on their own and are dropped.
func forEachInOrder[T any](ctx context.Context, ahead, n int, load func(ctx context.Context, i int) (T, error),
	use func(i int, v T, err error) error) error {
	if n == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	results := make([]chan result, n)
	for i := range results {
		results[i] = make(chan result, 1) // a load never waits for its reader
	}
	room := make(chan struct{}, max(ahead, 1))
	go func() {
		for i := range n {
			select {
			case room <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go func() {
				v, err := load(ctx, i)
				results[i] <- result{v, err}
			}()
		}
	}()
	for i := range n {
		var res result
		select {
		case res = <-results[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		err := use(i, res.v, res.err)
		<-room
		if err != nil {
			return err
		}
	}
	return nil
}
