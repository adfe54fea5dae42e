package disk

import (
	"context"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/disk/disktest"

	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/images/repo"
)

// The whole path through the real repository: back up, commit a snapshot, reopen, check,
// restore from the loaded snapshot.
func TestRoundTripThroughRepository(t *testing.T) {
	ctx := context.Background()
	src, size, _, _ := roundTripImage(t)
	dir, r := memblobs.LocalRepo(t, testBlock, repo.ChunkerParams{})
	d, st, err := Backup(ctx, r, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r2, sn := memblobs.CommitAndReopen(t, r, dir, &repo.Snapshot{Time: time.Now(), Host: "test", Kind: repo.SnapshotImage,
		Source: src, Disks: []repo.Disk{d}, Stats: st})
	dst := tempPath(t, "restored.img")
	if err := Restore(ctx, r2, sn.Disks[0], dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if apparent(t, dst) != size || disktest.FileSum(t, dst) != disktest.FileSum(t, src) {
		t.Fatal("image restored from the repository differs")
	}
	// A second backup into the reopened repository stores nothing new.
	_, st2, err := Backup(ctx, r2, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st2.BlobsNew != 0 {
		t.Fatalf("second backup stored %d new blobs", st2.BlobsNew)
	}
}
