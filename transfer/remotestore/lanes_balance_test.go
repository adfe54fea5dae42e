package remotestore

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/store"
)

// openedLanes waits until l has n sessions besides the primary.
func openedLanes(t *testing.T, l *Laned, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(l.LaneStats()) < 1+n {
		if time.Now().After(deadline) {
			t.Fatalf("%d lanes did not open: %s", n, FormatLaneStats(l.LaneStats()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// requestsOn is how many requests lane k's session has sent (0: the primary).
func requestsOn(l *Laned, k int) int64 {
	l.mu.Lock()
	c := l.lanes[k].c
	l.mu.Unlock()
	return c.Session().Stats().Requests
}

// TestLanesBalanceOwedBytes: loads go to the session with the fewest bytes still owed, not the
// fewest loads open, and small loads spread over the lanes once they are open. Through 25 ms each
// way the restore's patches and their bases (small loads) all waited on the primary behind its
// full window while the lanes idled, and lanes holding many short loads got as many large ones
// as a primary holding one long load.
func TestLanesBalanceOwedBytes(t *testing.T) {
	c, root, h, pack := testPack(t, 16<<20)
	p := newPipeLanes(t, root)
	l := NewLaned(c, LaneOptions{Open: p.open, After: 1, Max: 1, MinRoundTrip: -1})
	defer l.Close()
	ctx := context.Background()
	held := openOneLane(t, l, h) // a load to the end of the pack, unread, on the primary
	defer held.Close()
	base := requestsOn(l, 1)

	// A small load goes to the lane: the primary owes a whole window.
	small, err := l.Load(ctx, h, 1<<20, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	if got := requestsOn(l, 1) - base; got != 1 {
		t.Fatalf("a small load with the primary owing %d bytes went to the lane %d times, want 1: %s", LoadWindow, got, FormatLaneStats(l.LaneStats()))
	}
	if _, err := io.Copy(io.Discard, small); err != nil {
		t.Fatal(err)
	}
	small.Close()

	// The lane now holds two short loads (2 MiB owed), the primary one long one (4 MiB owed):
	// the next large load goes to the lane, although it has more loads open.
	var shorts []io.ReadCloser
	for i := range int64(2) {
		rc, err := l.Load(ctx, h, i<<20, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		shorts = append(shorts, rc)
	}
	before := l.LaneStats()
	next, err := l.Load(ctx, h, 4<<20, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	after := l.LaneStats()
	if after[1].Loads != before[1].Loads+1 {
		t.Fatalf("with the primary owing 4 MiB on one load and lane 1 2 MiB on two, a 1 MiB load went elsewhere: %s -> %s",
			FormatLaneStats(before), FormatLaneStats(after))
	}
	// Bytes read are no longer owed: with the held load read to its end (still open), the
	// primary owes nothing while the lane owes 3 MiB, and the primary takes the next load.
	if n, err := io.Copy(io.Discard, held); err != nil || n != int64(len(pack)) {
		t.Fatalf("read %d of %d bytes of the held load: %v", n, len(pack), err)
	}
	before = l.LaneStats()
	last, err := l.Load(ctx, h, 8<<20, 2<<20)
	if err != nil {
		t.Fatal(err)
	}
	last.Close()
	if after := l.LaneStats(); after[0].Loads != before[0].Loads+1 {
		t.Fatalf("the primary owes nothing, lane 1 owes 3 MiB, yet the next load went elsewhere: %s -> %s",
			FormatLaneStats(before), FormatLaneStats(after))
	}
	for _, rc := range append(shorts, next) {
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatal(err)
		}
		rc.Close()
	}
}

// openOneLane holds a load to the end of h open unread on the primary and sends a second one
// while it is, so that lane 1 opens; it returns the held load (the primary stays busy with it).
func openOneLane(t *testing.T, l *Laned, h store.Handle) io.ReadCloser {
	t.Helper()
	held, err := l.Load(context.Background(), h, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	second, err := l.Load(context.Background(), h, 0, 0)
	if err != nil {
		held.Close()
		t.Fatal(err)
	}
	second.Close()
	openedLanes(t, l, 1)
	return held
}
