package disk

import (
	"context"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/disk/disktest"
	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/store/local"
	"github.com/snapferry/snapferry/images/store/storetest"
)

// TestImageRestoreBatchesLoads: restoring a 96-block image asks the store for its packs in a
// handful of ranged loads, not one per block (ssh:// restores waited a round trip per block),
// and the image still comes back exactly.
func TestImageRestoreBatchesLoads(t *testing.T) {
	ctx := context.Background()
	const blocks = 96
	src := tempPath(t, "disk.img")
	makeSparse(t, src, blocks*testBlock, region{0, memblobs.RandBytes(11, blocks*testBlock)})
	dir, r := memblobs.LocalRepo(t, testBlock, repo.ChunkerParams{})
	d, st, err := Backup(ctx, r, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, sn := memblobs.CommitAndReopen(t, r, dir, &repo.Snapshot{Time: time.Now(), Host: "test", Kind: repo.SnapshotImage,
		Source: src, Disks: []repo.Disk{d}, Stats: st})
	cb := &storetest.LoadCounter{Backend: local.New(dir)}
	r2 := memblobs.OpenRepoOn(t, cb)
	dst := tempPath(t, "restored.img")
	if err := Restore(ctx, r2, sn.Disks[0], dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if disktest.FileSum(t, dst) != disktest.FileSum(t, src) {
		t.Fatal("restored image differs")
	}
	// Block maps and pack headers cost a few loads; the data must not cost one per block.
	if n := cb.PackLoads.Load(); n > blocks/4 {
		t.Fatalf("restore of %d blocks made %d pack loads, want <= %d", blocks, n, blocks/4)
	}
}
