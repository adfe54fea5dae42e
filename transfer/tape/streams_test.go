package tape

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

func TestRunStreamsBoundsAndStopsOnError(t *testing.T) {
	var running, most atomic.Int32
	started, err := RunStreams(context.Background(), 8, 3, func(ctx context.Context, i int) error {
		n := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		return nil
	})
	if err != nil || most.Load() > 3 {
		t.Fatalf("err %v, %d at once (want at most 3)", err, most.Load())
	}
	for i, s := range started {
		if !s {
			t.Fatalf("stream %d did not start", i)
		}
	}
	boom := errors.New("tape full")
	started, err = RunStreams(context.Background(), 50, 1, func(ctx context.Context, i int) error {
		if i == 2 {
			return boom
		}
		return ctx.Err()
	})
	if !errors.Is(err, boom) || started[49] {
		t.Fatalf("err %v, last started %v: want the first error and no later sets", err, started[49])
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := RunStreams(ctx, 2, 1, func(context.Context, int) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled parent: %v", err)
	}
}
