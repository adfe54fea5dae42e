package tape

import (
	"context"
	"sync"
)

// RunStreams runs write(ctx, i) for i in [0, n), at most streams at once: the save sets of one
// backup multiplexed onto one tape file. The first error cancels the context of the others and
// stops sets not yet started (sets already written stay on tape); it is returned, or ctx's error
// when ctx ended first. started reports which i ran.
func RunStreams(parent context.Context, n, streams int, write func(ctx context.Context, i int) error) (started []bool, err error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	started = make([]bool, n)
	sem := make(chan struct{}, max(streams, 1))
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		started[i] = true
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := write(ctx, i); err != nil {
				once.Do(func() { first = err })
				cancel()
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = parent.Err()
	}
	return started, first
}
