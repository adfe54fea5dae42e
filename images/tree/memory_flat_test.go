package tree

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/images/repo"
)

// synthTree writes n small files of distinct content, 100 per folder (scripts/bench/trees.sh's
// synthetic tree, smaller).
func synthTree(t *testing.T, n int) string {
	t.Helper()
	root := t.TempDir()
	for i := range n {
		dir := filepath.Join(root, fmt.Sprintf("d%03d", i/100))
		if i%100 == 0 {
			must(t, os.Mkdir(dir, 0o755))
		}
		must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d", i%100)), fmt.Appendf(nil, "file %d", i), 0o644))
	}
	return root
}

// heapLive is the live heap after two full collections: sync.Pool keeps what it held through
// the first one (its victim cache), and pooled scratch buffers are not what a file costs.
func heapLive() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// What a backup leaves in memory per file, and what a repository opened for the next backup or
// a restore holds per file, stays a few bytes (the compact index: 8 bytes per blob the run
// added, 4 per blob loaded at open) at 2 000 and at 20 000 files, not the 52 bytes of a full
// index entry or a map's ~100. Counted as live heap after a collection (runtime.MemStats), the
// difference between the two sizes per added file. The repository opened again held 8 bytes
// per added file while the loaded index kept a record number beside each prefix; 3 now.
func TestTreeMemoryPerFileFlat(t *testing.T) {
	ctx := context.Background()
	sizes := []int{2000, 20000}
	var afterBackup, afterOpen [2]int64
	for k, n := range sizes {
		src := synthTree(t, n)
		dir, r := memblobs.LocalRepo(t, 1<<20, repo.ChunkerParams{})
		before := heapLive()
		if _, err := Backup(ctx, r, []string{src}, Options{}); err != nil {
			t.Fatal(err)
		}
		must(t, r.Flush(ctx))
		afterBackup[k] = heapLive() - before
		before = heapLive()
		r2 := memblobs.OpenRepo(t, dir)
		afterOpen[k] = heapLive() - before
		runtime.KeepAlive(r)
		runtime.KeepAlive(r2)
	}
	added := int64(sizes[1] - sizes[0])
	for _, c := range []struct {
		what string
		got  [2]int64
		most int64
	}{{"after the backup", afterBackup, 16}, {"in a repository opened again", afterOpen, 5}} {
		perFile := (c.got[1] - c.got[0]) / added
		t.Logf("%s: %d and %d bytes live, %d per added file", c.what, c.got[0], c.got[1], perFile)
		if perFile > c.most {
			t.Errorf("%s: %d bytes live per added file (%d at %d files, %d at %d), want at most %d",
				c.what, perFile, c.got[0], sizes[0], c.got[1], sizes[1], c.most)
		}
	}
}
