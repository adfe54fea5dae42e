package repo

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestStrayFilesLockNobodyOut: files whose names are not ids (as a careless admin or an older
// append-only server let a client add) are skipped by every reader and reported by check, instead
// of failing snapshots, backup, restore and check for everybody.
func TestStrayFilesLockNobodyOut(t *testing.T) {
	ctx := context.Background()
	dir, r := newRepo(t)
	im := image{seed: 3, blocks: 12}
	sid := backupImage(t, r, "vm1", im, time.Now())
	strays := []string{"snapshots/not-an-id", "locks/xxx", "index/README", "keys/notes.txt", "data/ab/not-a-pack"}
	for _, s := range strays {
		p := filepath.Join(dir, s)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("stray"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r2 := testOpen(t, dir, nil)
	if infos, err := r2.ListSnapshots(ctx, SnapshotFilter{}); err != nil || len(infos) != 1 {
		t.Fatalf("snapshots: %d, %v", len(infos), err)
	}
	lk, err := r2.Lock(ctx, false)
	if err != nil {
		t.Fatalf("lock: %v", err)
	}
	backupImage(t, r2, "vm2", image{seed: 4, blocks: 8}, time.Now())
	lk.Unlock(ctx)
	verifyImage(t, r2, sid, im)
	rep := mustCheck(t, r2, true)
	slices.Sort(strays)
	if !slices.Equal(rep.StrayFiles, []string{"data/not-a-pack", "index/README", "keys/notes.txt", "locks/xxx", "snapshots/not-an-id"}) {
		t.Fatalf("check's stray files: %v", rep.StrayFiles)
	}
	if _, err := r2.Prune(ctx, PruneOptions{}); err != nil {
		t.Fatalf("prune: %v", err)
	}
	for _, s := range strays {
		if _, err := os.Stat(filepath.Join(dir, s)); err != nil {
			t.Fatalf("stray %s removed: %v", s, err)
		}
	}
}
