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
	dir, src, disk := backedUpRandomImage(t, blocks, 11)
	cb := &storetest.LoadCounter{Backend: local.New(dir)}
	r2 := memblobs.OpenRepoOn(t, cb)
	dst := tempPath(t, "restored.img")
	if err := Restore(ctx, r2, disk, dst, RestoreOptions{}); err != nil {
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

// backedUpRandomImage backs up an image of blocks random test blocks (seeded) into a fresh
// local repository and commits it: the repository's folder, the image's path and its disk map.
func backedUpRandomImage(t *testing.T, blocks int, seed uint64) (dir, src string, disk repo.Disk) {
	t.Helper()
	src = tempPath(t, "disk.img")
	makeSparse(t, src, int64(blocks)*testBlock, region{0, memblobs.RandBytes(seed, blocks*testBlock)})
	dir, r := memblobs.LocalRepo(t, testBlock, repo.ChunkerParams{})
	d, st, err := Backup(context.Background(), r, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, sn := memblobs.CommitAndReopen(t, r, dir, &repo.Snapshot{Time: time.Now(), Host: "test", Kind: repo.SnapshotImage,
		Source: src, Disks: []repo.Disk{d}, Stats: st})
	return dir, src, sn.Disks[0]
}
