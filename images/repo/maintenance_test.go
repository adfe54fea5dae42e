package repo

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron/clock"
	"github.com/snapferry/snapferry/images/progress"
	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/local"
)

func TestCheckReadDataNamesDamagedPackAndSnapshot(t *testing.T) {
	ctx := context.Background()
	dir, r := newRepo(t)
	imA, imB := image{seed: 10, blocks: 12}, image{seed: 11, blocks: 12}
	a := backupImage(t, r, "a", imA, t0)
	b := backupImage(t, r, "b", imB, t0.Add(time.Minute))
	mustCheck(t, r, true)

	// Damage one data block of A inside its pack file.
	blk := imA.block(1)
	r.mu.Lock()
	e, _ := r.idx.lookup(r.BlobID(blk))
	pack := r.idx.packs[e.pack]
	r.mu.Unlock()
	path := local.New(dir).Path(store.Handle{Kind: store.KindData, Name: pack.String()})
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var one [1]byte
	f.ReadAt(one[:], int64(e.offset)+10)
	one[0] ^= 0xff
	f.WriteAt(one[:], int64(e.offset)+10)
	f.Close()

	rep, err := r.Check(ctx, CheckOptions{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || !slices.Equal(rep.DamagedPacks, []ID{pack}) || !slices.Equal(rep.DamagedSnapshots, []ID{a}) {
		t.Fatalf("check --read-data: damaged packs %v snapshots %v, want [%s] [%s]; errors %v",
			rep.DamagedPacks, rep.DamagedSnapshots, pack.Short(), a.Short(), rep.Errors)
	}
	if _, err := r.LoadBlob(ctx, DataBlob, r.BlobID(blk), nil); !isErr(err, ErrCorrupt) {
		t.Errorf("loading the damaged blob: want ErrCorrupt, got %v", err)
	}
	verifyImage(t, r, b, imB)
	if _, err := r.Prune(ctx, PruneOptions{}); err != nil {
		t.Logf("prune on a damaged repository: %v", err) // allowed to refuse, must not delete A's data
	}
	verifyImage(t, r, b, imB)
}

func TestApplyPolicy(t *testing.T) {
	var snaps []SnapshotInfo
	// Every 6 hours for 60 days, for two sources.
	for i := 0; i < 60*4; i++ {
		for _, src := range []string{"vm1", "vm2"} {
			var id ID
			id[0], id[1], id[2] = byte(i), byte(i>>8), src[2]
			snaps = append(snaps, SnapshotInfo{ID: id, Snapshot: &Snapshot{Host: "esx1", Source: src,
				Time: t0.Add(time.Duration(i) * 6 * time.Hour)}})
		}
	}
	now := t0.Add(60 * 24 * time.Hour)
	groups := ApplyPolicy(snaps, Policy{Last: 2, Daily: 7, Weekly: 4, Monthly: 3}, now)
	if len(groups) != 2 || groups[0].Source != "vm1" || groups[1].Source != "vm2" {
		t.Fatalf("groups: %d", len(groups))
	}
	for _, g := range groups {
		kept := 0
		for _, d := range g.Decisions {
			if d.Keep {
				kept++
			}
		}
		// last 2 (both on the last day, which daily also keeps), 6 more days, weekly and monthly
		// add the older ends: between 12 and 16 distinct snapshots.
		if kept < 10 || kept > 16 {
			t.Errorf("%s: kept %d of %d", g.Source, kept, len(g.Decisions))
		}
		newest := g.Decisions[0]
		if !newest.Keep || !slices.Contains(newest.Reasons, "last") || !slices.Contains(newest.Reasons, "daily") {
			t.Errorf("newest snapshot reasons %v", newest.Reasons)
		}
		if g.Decisions[len(g.Decisions)-1].Keep && !slices.Contains(g.Decisions[len(g.Decisions)-1].Reasons, "monthly") {
			t.Errorf("oldest snapshot kept for %v", g.Decisions[len(g.Decisions)-1].Reasons)
		}
	}
	within := ApplyPolicy(snaps[:8], Policy{Within: 13 * time.Hour}, snaps[7].Snapshot.Time)
	for _, d := range within[0].Decisions {
		want := snaps[7].Snapshot.Time.Sub(d.Snapshot.Time) <= 13*time.Hour
		if d.Keep != want {
			t.Errorf("within 13h: snapshot at %s keep=%v", d.Snapshot.Time, d.Keep)
		}
	}
}

func TestForgetAndPrune(t *testing.T) {
	ctx := context.Background()
	dir, r := newRepo(t)
	imA, imB := image{seed: 20, blocks: 30}, image{seed: 21, blocks: 30}
	backupImage(t, r, "vm", imA, t0)
	b := backupImage(t, r, "vm", imB, t0.Add(time.Hour))
	packsBefore := countFiles(t, r.Backend(), store.KindData)

	if _, err := r.Forget(ctx, Policy{}, SnapshotFilter{}, false); err == nil {
		t.Fatal("forget with an empty policy succeeded")
	}
	groups, err := r.Forget(ctx, Policy{Last: 1}, SnapshotFilter{}, false)
	if err != nil || len(groups) != 1 || len(groups[0].Decisions) != 2 || groups[0].Decisions[0].ID != b {
		t.Fatalf("forget: %+v, %v", groups, err)
	}
	if n := countFiles(t, r.Backend(), store.KindSnapshots); n != 1 {
		t.Fatalf("%d snapshots after forget", n)
	}
	dry, err := r.Prune(ctx, PruneOptions{DryRun: true})
	if err != nil || dry.PacksDeleted == 0 || countFiles(t, r.Backend(), store.KindData) != packsBefore {
		t.Fatalf("dry-run prune: %+v, %v", dry, err)
	}
	rep, err := r.Prune(ctx, PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.PacksDeleted == 0 || rep.BytesFreed <= 0 || rep.BlobsUnused == 0 {
		t.Errorf("prune report %+v", rep)
	}
	if got := countFiles(t, r.Backend(), store.KindData); got != packsBefore-rep.PacksDeleted-rep.PacksRepacked+rep.PacksWritten {
		t.Errorf("%d packs after prune, report %+v, before %d", got, rep, packsBefore)
	}
	if r.HasBlob(DataBlob, r.BlobID(imA.block(1))) {
		t.Error("a pruned blob is still in the index")
	}
	r2 := testOpen(t, dir, nil)
	verifyImage(t, r2, b, imB)
	mustCheck(t, r2, true)
	// Nothing left to prune: a second prune changes nothing and keeps the index.
	rep2, err := r2.Prune(ctx, PruneOptions{})
	if err != nil || rep2.PacksDeleted+rep2.PacksRepacked != 0 || countFiles(t, r2.Backend(), store.KindIndex) == 0 {
		t.Fatalf("second prune: %+v, %v", rep2, err)
	}
	// Data removed by prune is stored again by the next backup.
	a2 := backupImage(t, r2, "vm", imA, t0.Add(2*time.Hour))
	verifyImage(t, testOpen(t, dir, nil), a2, imA)
}

func TestPruneRepacksMostlyUnusedPacks(t *testing.T) {
	ctx := context.Background()
	dir, _ := newRepo(t)
	r := testOpen(t, dir, func(o *Options) { o.PackSize = 4 << 20; o.Packers = 1 })
	orphan, kept := image{seed: 30, blocks: 20}, image{seed: 31, blocks: 10}
	for i := 0; i < orphan.blocks; i++ {
		if b := orphan.block(i); b != nil {
			mustSave(t, r, DataBlob, b)
		}
	}
	s := backupImage(t, r, "vm", kept, t0) // same pack as the orphans, its block map in a tree pack
	if n := countFiles(t, r.Backend(), store.KindData); n != 2 {
		t.Fatalf("%d packs, want 2", n)
	}
	rep, err := r.Prune(ctx, PruneOptions{})
	if err != nil || rep.PacksRepacked != 1 || rep.PacksWritten != 1 || rep.BytesFreed <= 0 {
		t.Fatalf("prune: %+v, %v", rep, err)
	}
	if r.HasBlob(DataBlob, r.BlobID(orphan.block(1))) || !r.HasBlob(DataBlob, r.BlobID(kept.block(1))) {
		t.Error("repack kept the wrong blobs")
	}
	r2 := testOpen(t, dir, nil)
	verifyImage(t, r2, s, kept)
	mustCheck(t, r2, true)
}

// TestPruneReclaimsLeftoversWhenNoWriterCanUseThem: packs an interrupted backup left unindexed
// stay while a writer that started before them still holds its lock (it may be the one writing
// them), and go as soon as it is gone, with no age limit; --keep-unindexed adds one.
func TestPruneReclaimsLeftoversWhenNoWriterCanUseThem(t *testing.T) {
	ctx := context.Background()
	dir, r := newRepo(t)
	backupImage(t, r, "vm", image{seed: 40, blocks: 5}, t0)
	// A writer that is still running, and an interrupted backup: packs uploaded, index file lost.
	live := testOpen(t, dir, func(o *Options) { o.Hostname = "otherhost" })
	lk, err := live.Lock(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	w := testOpen(t, dir, nil)
	for i := 0; i < 12; i++ {
		if b := (image{seed: 41}).block(i); b != nil {
			mustSave(t, w, DataBlob, b)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	lost := w.indexFiles[len(w.indexFiles)-1]
	w.mu.Unlock()
	if err := w.Backend().Remove(ctx, store.Handle{Kind: store.KindIndex, Name: lost.String()}); err != nil {
		t.Fatal(err)
	}
	packs := countFiles(t, r.Backend(), store.KindData)
	rep, err := r.Prune(ctx, PruneOptions{})
	if err != nil || rep.PacksDeferred == 0 || rep.UnindexedDeleted != 0 || countFiles(t, r.Backend(), store.KindData) != packs {
		t.Fatalf("prune while a writer older than the leftovers runs: %+v, %v", rep, err)
	}
	crep := mustCheck(t, testOpen(t, dir, nil), false)
	if len(crep.UnindexedPacks) == 0 || !strings.Contains(fmt.Sprint(crep.Warnings), "the next backup adopts it") {
		t.Fatalf("check's word on leftovers: %v", crep.Warnings)
	}
	lk.Unlock(ctx)
	rep, err = r.Prune(ctx, PruneOptions{KeepUnindexed: time.Hour})
	if err != nil || rep.UnindexedDeleted != 0 || rep.PacksDeferred == 0 {
		t.Fatalf("prune --keep-unindexed=1h: %+v, %v", rep, err)
	}
	rep, err = r.Prune(ctx, PruneOptions{})
	if err != nil || rep.UnindexedDeleted == 0 || countFiles(t, r.Backend(), store.KindData) != packs-rep.UnindexedDeleted {
		t.Fatalf("prune with no writer left: %+v, %v", rep, err)
	}
	rep2 := mustCheck(t, testOpen(t, dir, nil), true)
	if len(rep2.UnindexedPacks) != 0 {
		t.Errorf("unindexed packs after prune: %v", rep2.UnindexedPacks)
	}
}

func TestDamagedIndexFile(t *testing.T) {
	ctx := context.Background()
	dir, r := newRepo(t)
	im := image{seed: 45, blocks: 20}
	s := backupImage(t, r, "vm", im, t0)
	r.mu.Lock()
	victim := r.indexFiles[0]
	r.mu.Unlock()
	path := local.New(dir).Path(store.Handle{Kind: store.KindIndex, Name: victim.String()})
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[40] ^= 0x55
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r2 := testOpen(t, dir, nil)
	if len(r2.IndexProblems()) != 1 {
		t.Fatalf("open skipped %d damaged index files, want 1", len(r2.IndexProblems()))
	}
	rep, err := r2.Check(ctx, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.Errors[0].Kind != "index" || rep.Errors[0].Object != victim.String() {
		t.Fatalf("check: %v", rep.Errors)
	}
	packs := countFiles(t, r2.Backend(), store.KindData)
	later := testOpen(t, dir, func(o *Options) { o.Clock = clock.Fixed(time.Now().Add(72 * time.Hour)) })
	if _, err := later.Prune(ctx, PruneOptions{}); !isErr(err, ErrCorrupt) {
		t.Fatalf("prune with a damaged index: want ErrCorrupt, got %v", err)
	}
	if countFiles(t, r2.Backend(), store.KindData) != packs {
		t.Fatal("prune deleted packs despite a damaged index")
	}
	if _, err := r2.RebuildIndex(ctx); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, r2, true)
	verifyImage(t, testOpen(t, dir, nil), s, im)
}

func TestCheckReportsProgress(t *testing.T) {
	ctx := context.Background()
	_, r := newRepo(t)
	backupImage(t, r, "a", image{seed: 12, blocks: 20}, t0)
	backupImage(t, r, "b", image{seed: 13, blocks: 20}, t0)
	var total int64
	r.Backend().List(ctx, store.KindData, func(fi store.FileInfo) error { total += fi.Size; return nil })
	var c progress.Counter
	rep, err := r.Check(ctx, CheckOptions{ReadData: true, Progress: &c})
	if err != nil || !rep.OK() {
		t.Fatalf("check: %v %v", err, rep)
	}
	st := c.Snapshot()
	if st.Bytes != total || st.Files != 2 || st.Items != 2 || st.Done != 2 {
		t.Errorf("progress %+v, want %d bytes of packs and 2 snapshots", st, total)
	}
	if rep.PacksRead != countFiles(t, r.Backend(), store.KindData) || rep.BlobsRead != rep.Blobs {
		t.Errorf("read %d packs, %d of %d blobs", rep.PacksRead, rep.BlobsRead, rep.Blobs)
	}
}

// TestLockReloadsIndexAfterPrune: a process opens the repository, another prunes away blobs the
// first has in its index; once the first takes its lock it must not deduplicate against them.
func TestLockReloadsIndexAfterPrune(t *testing.T) {
	ctx := context.Background()
	dir, r := newRepo(t)
	im := image{seed: 98, blocks: 12}
	old := backupImage(t, r, "vm", im, t0)

	early := testOpen(t, dir, nil) // loads an index naming im's blobs
	if err := r.RemoveSnapshot(ctx, old); err != nil {
		t.Fatal(err)
	}
	if rep, err := r.Prune(ctx, PruneOptions{}); err != nil || rep.PacksDeleted == 0 {
		t.Fatalf("prune: %+v, %v", rep, err)
	}
	lk, err := early.Lock(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Unlock(ctx)
	s := backupImage(t, early, "vm", im, t0.Add(time.Hour))
	if early.Stats().BlobsReused != 0 {
		t.Errorf("reused %d blobs that prune deleted", early.Stats().BlobsReused)
	}
	verifyImage(t, testOpen(t, dir, nil), s, im)
}
