package repo

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

func TestForEachParallel(t *testing.T) {
	ctx := context.Background()
	seen := make([]atomic.Int32, 100)
	if err := forEachParallel(ctx, 4, len(seen), func(_ context.Context, i int) error { seen[i].Add(1); return nil }); err != nil {
		t.Fatal(err)
	}
	for i := range seen {
		if seen[i].Load() != 1 {
			t.Fatalf("item %d visited %d times", i, seen[i].Load())
		}
	}
	boom := errors.New("boom")
	var calls atomic.Int32
	err := forEachParallel(ctx, 2, 1000, func(_ context.Context, i int) error {
		calls.Add(1)
		if i == 5 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || calls.Load() > 20 {
		t.Fatalf("error: got %v after %d calls", err, calls.Load())
	}
	if err := forEachParallel(ctx, 4, 0, func(context.Context, int) error { return boom }); err != nil {
		t.Fatalf("no items: %v", err)
	}
}
