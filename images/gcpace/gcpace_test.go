package gcpace

import (
	"runtime/debug"
	"testing"
)

type sized int64

func (s sized) IndexMemory() int64 { return int64(s) }

// TestSetAndPutBack: the target is set unless keep says otherwise, the limit only lowered, and
// both come back as they were.
func TestSetAndPutBack(t *testing.T) {
	prevPercent, prevLimit := debug.SetGCPercent(50), debug.SetMemoryLimit(256<<20)
	t.Cleanup(func() { debug.SetGCPercent(prevPercent); debug.SetMemoryLimit(prevLimit) })
	never := func(int) bool { return false }
	for _, c := range []struct {
		name      string
		percent   int
		keep      func(int) bool
		limit     int64
		wantPct   int
		wantLimit int64
	}{
		{"both set", 400, never, 40 << 20, 400, 40 << 20},
		{"a higher limit does not raise it", 25, never, 512 << 20, 25, 256 << 20},
		{"no limit", 25, never, 0, 25, 256 << 20},
		{"the target kept", 25, func(prev int) bool { return prev < 100 }, 40 << 20, 50, 40 << 20},
	} {
		undo := Set(c.percent, c.keep, c.limit)
		gotPct, gotLimit := Current()
		undo()
		if gotPct != c.wantPct || gotLimit != c.wantLimit {
			t.Errorf("%s: target %d and limit %d during the run, want %d and %d", c.name, gotPct, gotLimit, c.wantPct, c.wantLimit)
		}
		if p, l := debug.SetGCPercent(50), debug.SetMemoryLimit(-1); p != 50 || l != 256<<20 {
			t.Errorf("%s: target %d and limit %d after the run, want 50 and %d", c.name, p, l, 256<<20)
		}
	}
	if IndexMemory(sized(7)) != 7 || IndexMemory(struct{}{}) != 0 {
		t.Error("IndexMemory: want the store's figure, 0 from one that cannot say")
	}
}
