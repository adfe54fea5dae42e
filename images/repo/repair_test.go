package repo

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/store"
)

// corruptBlob flips a byte in the middle of the stored copy of blob id and returns its pack.
func corruptBlob(t *testing.T, dir string, r *Repository, id ID) ID {
	t.Helper()
	e, pack, err := r.locate(DataBlob, id)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, store.RelPath(store.Handle{Kind: store.KindData, Name: pack.String()}))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[int(e.offset)+int(e.stored)/2] ^= 0x55
	os.Chmod(p, 0o644)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return pack
}

// TestCheckMarksDamageSoBackupsStoreAgain: after check --read-data found a blob damaged, the
// next backup of the same data stores it again instead of deduplicating against the bad copy,
// and the old snapshot reads again through the new copy.
func TestCheckMarksDamageSoBackupsStoreAgain(t *testing.T) {
	ctx := context.Background()
	dir, r := newRepo(t)
	im := image{seed: 11, blocks: 20}
	sid := backupImage(t, r, "vm1", im, time.Now())
	victim := r.BlobID(im.block(1))
	corruptBlob(t, dir, r, victim)

	r2 := testOpen(t, dir, nil)
	rep, err := r2.Check(ctx, CheckOptions{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.BlobsMarked != 1 || !slices.Contains(rep.DamagedBlobs, victim) || !slices.Contains(rep.DamagedSnapshots, sid) {
		t.Fatalf("check: marked %d, damaged blobs %v, snapshots %v, errors %v", rep.BlobsMarked, rep.DamagedBlobs, rep.DamagedSnapshots, rep.Errors)
	}
	// A plain check (no reading) still knows the snapshot is damaged, from the mark.
	r3 := testOpen(t, dir, nil)
	if rep, err := r3.Check(ctx, CheckOptions{}); err != nil || !slices.Contains(rep.DamagedSnapshots, sid) {
		t.Fatalf("check after the mark: %v %+v", err, rep)
	}
	// Marking twice writes nothing new.
	if rep, err := r3.Check(ctx, CheckOptions{ReadData: true}); err != nil || rep.BlobsMarked != 0 {
		t.Fatalf("second check --read-data marked %d again (%v)", rep.BlobsMarked, err)
	}

	r4 := testOpen(t, dir, nil)
	backupImage(t, r4, "vm1", im, time.Now())
	if st := r4.Stats(); st.BlobsNew != 1 {
		t.Fatalf("backup after the damage mark stored %d blobs, want the damaged one again", st.BlobsNew)
	}
	r5 := testOpen(t, dir, nil)
	verifyImage(t, r5, sid, im)
	if _, err := r5.Repair(ctx, RepairOptions{}); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, testOpen(t, dir, nil), true)
}

// TestRepairRemovesDamagedBlobs: repair salvages the good blobs of a pack with a damaged blob,
// deletes the pack, names the lost blob and the snapshot that needs it; the next backup of the
// same data mends the snapshot.
func TestRepairRemovesDamagedBlobs(t *testing.T) {
	for _, enc := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "encrypted"}[enc], func(t *testing.T) {
			ctx := context.Background()
			dir, r, mod := newRepoEncryptedIf(t, enc)
			im := image{seed: 12, blocks: 30}
			sid := backupImage(t, r, "vm1", im, time.Now())
			victim := r.BlobID(im.block(2))
			pack := corruptBlob(t, dir, r, victim)
			packsBefore := packFiles(t, dir)

			r2 := testOpen(t, dir, mod)
			dry, err := r2.Repair(ctx, RepairOptions{DryRun: true})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(dry.LostBlobs, []ID{victim}) || !slices.Equal(dry.DamagedSnapshots, []ID{sid}) || !slices.Equal(dry.DamagedPacks, []ID{pack}) {
				t.Fatalf("dry run: %+v", dry)
			}
			if after := packFiles(t, dir); len(after) != len(packsBefore) {
				t.Fatal("the dry run changed packs")
			}
			rep, err := r2.Repair(ctx, RepairOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(rep.LostBlobs, []ID{victim}) || !slices.Equal(rep.DamagedSnapshots, []ID{sid}) || rep.BlobsSalvaged == 0 || rep.PacksWritten == 0 {
				t.Fatalf("repair: %+v", rep)
			}
			if packFiles(t, dir)[pack.String()] {
				t.Fatal("the damaged pack is still there")
			}
			r3 := testOpen(t, dir, mod)
			if r3.HasBlob(DataBlob, victim) {
				t.Fatal("the damaged blob is still indexed")
			}
			crep, err := r3.Check(ctx, CheckOptions{ReadData: true})
			if err != nil || len(crep.DamagedPacks) != 0 || !slices.Equal(crep.DamagedSnapshots, []ID{sid}) {
				t.Fatalf("check after repair: %v %+v", err, crep)
			}
			backupImage(t, r3, "vm1", im, time.Now())
			if st := r3.Stats(); st.BlobsNew != 1 {
				t.Fatalf("backup after repair stored %d blobs, want 1", st.BlobsNew)
			}
			r4 := testOpen(t, dir, mod)
			mustCheck(t, r4, true)
			verifyImage(t, r4, sid, im)
		})
	}
}
