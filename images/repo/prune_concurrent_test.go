package repo

import (
	"context"
	"testing"
	"time"
)

// TestBackupAcrossPruneLosesNothing: a backup that loaded the index (and took its lock) before a
// prune dropped the packs of a forgotten snapshot deduplicates against them; prune does not
// delete them while that backup's lock lives, the backup indexes them again when it commits,
// and its snapshot is whole. A later prune keeps them (a snapshot needs them now).
func TestBackupAcrossPruneLosesNothing(t *testing.T) {
	ctx := context.Background()
	dir, r := newRepo(t)
	im := image{seed: 80, blocks: 30}
	old := backupImage(t, r, "vm", im, t0)

	w := testOpen(t, dir, func(o *Options) { o.Hostname = "backuphost" })
	lk, err := w.Lock(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.RemoveSnapshot(ctx, old); err != nil {
		t.Fatal(err)
	}
	rep, err := r.Prune(ctx, PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.PacksDropped == 0 || rep.PacksDeferred != rep.PacksDropped || rep.PacksDeleted != 0 {
		t.Fatalf("prune beside a live backup: %+v", rep)
	}
	// The backup stores the same image: every blob is found in its (older) index.
	sid := backupImage(t, w, "vm", im, t0.Add(time.Hour))
	if st := w.Stats(); st.BlobsNew != 0 {
		t.Fatalf("the backup stored %d blobs, want all deduplicated", st.BlobsNew)
	}
	lk.Unlock(ctx)
	r2 := testOpen(t, dir, nil)
	verifyImage(t, r2, sid, im)
	mustCheck(t, r2, true)
	rep, err = r2.Prune(ctx, PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r3 := testOpen(t, dir, nil)
	verifyImage(t, r3, sid, im)
	if crep := mustCheck(t, r3, true); len(crep.UnindexedPacks) != 0 {
		t.Fatalf("after the second prune: %d unindexed packs (%+v)", len(crep.UnindexedPacks), rep)
	}
}

// TestPruneDeletesDroppedPacksOnceWritersAreGone: without writers, what prune drops is deleted
// in the same run; the tombstone files go with it.
func TestPruneDeletesDroppedPacksOnceWritersAreGone(t *testing.T) {
	ctx := context.Background()
	dir, r := newRepo(t)
	old := backupImage(t, r, "vm", image{seed: 81, blocks: 20}, t0)
	keep := image{seed: 82, blocks: 10}
	sid := backupImage(t, r, "vm2", keep, t0)
	if err := r.RemoveSnapshot(ctx, old); err != nil {
		t.Fatal(err)
	}
	rep, err := r.Prune(ctx, PruneOptions{})
	if err != nil || rep.PacksDropped == 0 || rep.PacksDeleted != rep.PacksDropped || rep.PacksDeferred != 0 {
		t.Fatalf("prune: %+v, %v", rep, err)
	}
	r2 := testOpen(t, dir, nil)
	if crep := mustCheck(t, r2, true); len(crep.UnindexedPacks) != 0 {
		t.Fatalf("unindexed packs left: %v", crep.UnindexedPacks)
	}
	verifyImage(t, r2, sid, keep)
}
