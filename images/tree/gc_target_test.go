package tree

import (
	"context"
	"runtime/debug"
	"testing"

	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/images/repo"
)

// gcPercent reads the GC target (the runtime only reads it by setting it).
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// A tree backup runs with the GC target at most treeGCPercent and puts the caller's back after;
// a caller's tighter target stays as it is.
func TestBackupTightensGCTargetAndRestoresIt(t *testing.T) {
	orig := gcPercent()
	t.Cleanup(func() { debug.SetGCPercent(orig) })
	_, src := makeFixture(t)
	for _, before := range []int{80, 10} {
		debug.SetGCPercent(before)
		during := -2
		_, err := Backup(context.Background(), memblobs.New(1<<20), []string{src}, Options{
			Chunking: smallChunks,
			Exclude:  func(string, *repo.Node) bool { during = gcPercent(); return false },
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := min(before, treeGCPercent); during != want {
			t.Errorf("GC target %d before: %d during the backup, want %d", before, during, want)
		}
		if after := gcPercent(); after != before {
			t.Errorf("GC target %d before: %d after the backup", before, after)
		}
	}
}

// Tree backups and restores run under treeMemoryLimit plus the index's memory and put the
// caller's limit back after; a caller's lower limit stays.
func TestTreeRunsLowerTheMemoryLimitAndRestoreIt(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "") // a user's GOMEMLIMIT is kept as it is (next test)
	orig := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(orig) })
	_, src := makeFixture(t)
	_, r := memblobs.LocalRepo(t, 1<<20, repo.ChunkerParams(smallChunks))
	for _, before := range []int64{256 << 20, 8 << 20} {
		debug.SetMemoryLimit(before)
		var during int64 = -2
		res, err := Backup(context.Background(), r, []string{src}, Options{
			Chunking: smallChunks,
			Exclude:  func(string, *repo.Node) bool { during = debug.SetMemoryLimit(-1); return false },
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := min(before, treeMemoryLimit+r.IndexMemory()); during > want || during < min(before, treeMemoryLimit) {
			t.Errorf("limit %d before: %d during the backup, want %d", before, during, want)
		}
		if after := debug.SetMemoryLimit(-1); after != before {
			t.Errorf("limit %d before: %d after the backup", before, after)
		}
		must(t, r.Flush(context.Background()))
		var inRestore int64 = -2
		bs := &onDataLoad{BlobStore: r, n: 1, hook: func() { inRestore = debug.SetMemoryLimit(-1) }}
		if _, err := Restore(context.Background(), bs, res.Root, t.TempDir(), RestoreOptions{}); err != nil {
			t.Fatal(err)
		}
		if want := min(before, treeMemoryLimit+r.IndexMemory()); inRestore != want {
			t.Errorf("limit %d before: %d during the restore, want %d (the index counted)", before, inRestore, want)
		}
		if after := debug.SetMemoryLimit(-1); after != before {
			t.Errorf("limit %d before: %d after the restore", before, after)
		}
	}
}

// A limit the user set with GOMEMLIMIT is kept as it is, even above the tree runs' own.
func TestGOMEMLIMITOverridesTheTreeLimit(t *testing.T) {
	orig := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(orig) })
	t.Setenv("GOMEMLIMIT", "300MiB") // the runtime read it at start; tests set both
	debug.SetMemoryLimit(300 << 20)
	_, src := makeFixture(t)
	var during int64 = -2
	_, err := Backup(context.Background(), memblobs.New(1<<20), []string{src}, Options{
		Chunking: smallChunks,
		Exclude:  func(string, *repo.Node) bool { during = debug.SetMemoryLimit(-1); return false },
	})
	if err != nil {
		t.Fatal(err)
	}
	if during != 300<<20 {
		t.Errorf("GOMEMLIMIT=300MiB: limit %d during the backup, want %d", during, 300<<20)
	}
}
