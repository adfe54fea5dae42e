package disk

import (
	"context"
	"io"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"

	"github.com/snapferry/snapferry/images/gcpace"
	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/local"
)

// garbageBackend is a store whose loads leave garbage behind the way an ssh:// store's do:
// golang.org/x/crypto/ssh copies every 32 KiB packet it receives into a fresh slice. It leaves
// perByte bytes of garbage per byte loaded.
type garbageBackend struct {
	store.Backend
	perByte int
	mu      sync.Mutex
	sink    []byte // keeps the allocations from being optimized away
}

func (b *garbageBackend) Load(ctx context.Context, h store.Handle, off, n int64) (io.ReadCloser, error) {
	rc, err := b.Backend.Load(ctx, h, off, n)
	if err != nil {
		return nil, err
	}
	return &garbageReader{ReadCloser: rc, b: b}, nil
}

type garbageReader struct {
	io.ReadCloser
	b *garbageBackend
}

func (r *garbageReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	for left := n * r.b.perByte; left > 0; left -= 32 << 10 {
		pkt := make([]byte, min(left, 32<<10))
		r.b.mu.Lock()
		r.b.sink = pkt
		r.b.mu.Unlock()
	}
	return n, err
}

// setGC sets the binary's defaults (cmd/snapferry: GOGC 50, a 256 MiB soft limit) for the test
// and puts the test process's settings back after it. The user has set neither variable.
func setGC(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	prevPercent, prevLimit := debug.SetGCPercent(50), debug.SetMemoryLimit(256<<20)
	t.Cleanup(func() { debug.SetGCPercent(prevPercent); debug.SetMemoryLimit(prevLimit) })
}

// restoreWithGarbage backs up a 4 MiB image and restores it through a garbageBackend that leaves
// 16 bytes of garbage per byte loaded (64 MiB), and returns how many collections the restore ran.
func restoreWithGarbage(t *testing.T) uint32 {
	ctx := context.Background()
	dir, _, disk := backedUpRandomImage(t, 256, 12)
	r2 := memblobs.OpenRepoOn(t, &garbageBackend{Backend: local.New(dir), perByte: 16})
	dst := tempPath(t, "restored.img")
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := Restore(ctx, r2, disk, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	t.Logf("restore: %d collections, %d MiB allocated", after.NumGC-before.NumGC, (after.TotalAlloc-before.TotalAlloc)>>20)
	return after.NumGC - before.NumGC
}

// TestRestoreCollectsRarelyOnGarbage: an image restore from a store that turns what it receives
// into garbage (ssh://) runs few collections: the heap grows to restoreMemoryLimit before one
// runs, not to +50% of a small live heap (180-230 collections in the full-size ssh:// restore
// before, counted in collections per 64 MiB of garbage here).
func TestRestoreCollectsRarelyOnGarbage(t *testing.T) {
	setGC(t)
	if n := restoreWithGarbage(t); n > 10 {
		t.Fatalf("the restore ran %d collections over 64 MiB of garbage, want <= 10", n)
	}
}

// TestPaceGCAndPutBack: during a restore the GC target is restoreGCPercent and the
// limit restoreMemoryLimit plus the workers' blocks plus the index (a lower limit stays); after it the caller's settings
// are back. A user's GOGC or GOMEMLIMIT leaves both as they are.
func TestPaceGCAndPutBack(t *testing.T) {
	setGC(t)
	_, r := memblobs.LocalRepo(t, testBlock, repo.ChunkerParams{})
	for _, c := range []struct {
		name      string
		env       string
		limit     int64
		wantGC    int
		wantLimit int64
	}{
		{"defaults", "", 256 << 20, restoreGCPercent, restoreMemoryLimit + 4*workerHeldBlocks*testBlock + r.IndexMemory()},
		{"a lower limit stays", "", 8 << 20, restoreGCPercent, 8 << 20},
		{"the user's GOGC", "GOGC", 256 << 20, 50, 256 << 20},
		{"the user's GOMEMLIMIT", "GOMEMLIMIT", 256 << 20, 50, 256 << 20},
	} {
		if c.env != "" {
			t.Setenv(c.env, "77")
		}
		debug.SetGCPercent(50)
		debug.SetMemoryLimit(c.limit)
		undo := paceGC(r, 4, testBlock)
		gotGC, gotLimit := gcpace.Current()
		undo()
		if gotGC != c.wantGC || gotLimit != c.wantLimit {
			t.Errorf("%s: GC target %d and limit %d during the restore, want %d and %d", c.name, gotGC, gotLimit, c.wantGC, c.wantLimit)
		}
		if p, l := debug.SetGCPercent(50), debug.SetMemoryLimit(-1); p != 50 || l != c.limit {
			t.Errorf("%s: GC target %d and limit %d after the restore, want 50 and %d", c.name, p, l, c.limit)
		}
		if c.env != "" {
			t.Setenv(c.env, "")
		}
	}
}

// TestPaceGCFollowsTheRun: the limit grows with the workers and their block size (a fixed limit
// under the live heap of many workers made the GC run back to back: 16 CPU s instead of 6 in a
// restore through read lanes), and a store that asks for more loads in flight keeps the
// defaults (that restore waits on the link, and holds loads sent ahead).
func TestPaceGCFollowsTheRun(t *testing.T) {
	setGC(t)
	dir, r := memblobs.LocalRepo(t, testBlock, repo.ChunkerParams{})
	limitDuring := func(bs repo.BlobStore, workers, blockSize int) int64 {
		undo := paceGC(bs, workers, blockSize)
		defer undo()
		return debug.SetMemoryLimit(-1)
	}
	few, many := limitDuring(r, 4, 1<<20), limitDuring(r, 64, 1<<20)
	if want := int64(60 * workerHeldBlocks << 20); many-few != want {
		t.Errorf("64 workers of 1 MiB blocks got a limit %d bytes above 4 workers', want %d", many-few, want)
	}
	if big := limitDuring(r, 4, 4<<20); big-few != 4*workerHeldBlocks*3<<20 {
		t.Errorf("4 MiB blocks got a limit %d bytes above 1 MiB blocks', want %d", big-few, 4*workerHeldBlocks*3<<20)
	}
	advised := memblobs.OpenRepoOn(t, advisingBackend{Backend: local.New(dir), n: 8})
	if got := limitDuring(advised, 8, 1<<20); got != 256<<20 {
		t.Errorf("a store advising more loads in flight got a limit of %d during the restore, want the default %d", got, 256<<20)
	}
}
