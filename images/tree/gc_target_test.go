package tree

import (
	"context"
	"runtime/debug"
	"testing"

	"github.com/snapferry/snapferry/images/disk/memblobs"
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
