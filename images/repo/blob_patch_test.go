package repo

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/disk/disktest"

	"github.com/snapferry/snapferry/images/store"
)

const testSubSize = 1 << 10 // 16 sub-blocks per test block

func randBlock(seed uint64, n int) []byte {
	b := make([]byte, n)
	var key [32]byte
	key[0], key[1] = byte(seed), byte(seed>>8)
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}

// changeSubs returns a copy of base with the listed sub-blocks overwritten by fresh bytes.
func changeSubs(base []byte, sub int, changed []int, seed uint64) []byte {
	b := bytes.Clone(base)
	fresh := randBlock(seed+1000, len(b))
	for _, k := range changed {
		off := k * sub
		copy(b[off:min(off+sub, len(b))], fresh[off:])
	}
	return b
}

// diffSubs lists the sub-blocks where a and b differ (both of one length).
func diffSubs(a, b []byte, sub int) []int {
	var out []int
	for off := 0; off < len(a); off += sub {
		end := min(off+sub, len(a))
		if !bytes.Equal(a[off:end], b[off:end]) {
			out = append(out, off/sub)
		}
	}
	return out
}

func mustPatch(t testing.TB, r *Repository, base, block []byte, changed []int) (ID, bool) {
	t.Helper()
	id := r.BlobID(block)
	added, err := r.SavePatch(context.Background(), id, r.BlobID(base), block, testSubSize, changed)
	if err != nil {
		t.Fatalf("save patch: %v", err)
	}
	return id, added
}

func mustFlush(t testing.TB, r *Repository) {
	t.Helper()
	if err := r.Flush(context.Background()); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

func mustLoad(t testing.TB, r *Repository, id ID, want []byte) {
	t.Helper()
	got, err := r.LoadBlob(context.Background(), DataBlob, id, nil)
	if err != nil {
		t.Fatalf("load %s: %v", id.Short(), err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("load %s: rebuilt block differs", id.Short())
	}
}

func isPatchBlob(r *Repository, id ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.idx.lookup(id)
	return ok && e.comp&compPatch != 0
}

func TestPatchRoundTrip(t *testing.T) {
	for _, enc := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "encrypted"}[enc], func(t *testing.T) {
			ctx := context.Background()
			dir, r, mod := newRepoEncryptedIf(t, enc)
			reopen := func() *Repository { return testOpen(t, dir, mod) }
			if !r.PatchesEnabled() {
				t.Fatal("a new repository has no patches")
			}
			base := randBlock(1, testBlockSize)
			changed := []int{1, 5, 15}
			block := changeSubs(base, testSubSize, changed, 1)
			baseID := mustSaveWhole(t, r, base)
			// The base is only queued: that is fine, it is a whole blob of this run.
			id, added := mustPatch(t, r, base, block, changed)
			if !added || !r.IsFullBlob(baseID) || r.IsFullBlob(id) || !r.HasBlob(DataBlob, id) {
				t.Fatalf("added %v, base full %v, patch full %v", added, r.IsFullBlob(baseID), r.IsFullBlob(id))
			}
			st := r.Stats()
			wantLen := patchHeaderSize + 4*3 + 3*testSubSize
			if st.BlobsPatched != 1 || st.BytesPatched != int64(wantLen) || st.BytesPatchedWhole != testBlockSize || st.BlobsNew != 2 {
				t.Fatalf("stats %+v", st)
			}
			// Dedup: the block is in the repository now, however it is offered.
			if _, again := mustPatch(t, r, base, block, changed); again {
				t.Fatal("second SavePatch stored the block again")
			}
			if again, err := r.SaveBlob(ctx, DataBlob, id, block); err != nil || again {
				t.Fatalf("SaveBlob of a patched block: %v, %v", again, err)
			}
			mustFlush(t, r)
			mustLoad(t, r, id, block)

			r2 := reopen()
			if r2.IsFullBlob(id) || !r2.IsFullBlob(baseID) || !isPatchBlob(r2, id) {
				t.Fatal("after reopen the patch flag is lost")
			}
			r2.mu.Lock()
			e, _ := r2.idx.lookup(id)
			r2.mu.Unlock()
			if e.raw != uint32(wantLen) {
				t.Fatalf("patch raw length %d, want %d", e.raw, wantLen)
			}
			mustLoad(t, r2, id, block)
			// LoadBlob reuses a buffer without leaving base bytes behind.
			buf := make([]byte, 0, 2*testBlockSize)
			got, err := r2.LoadBlob(ctx, DataBlob, id, buf)
			if err != nil || !bytes.Equal(got, block) {
				t.Fatalf("load into a buffer: %v", err)
			}
			if _, again := mustPatch(t, r2, base, block, changed); again {
				t.Fatal("SavePatch after reopen stored the block again")
			}
			mustCheck(t, r2, true)
		})
	}
}

func mustSaveWhole(t testing.TB, r *Repository, b []byte) ID {
	t.Helper()
	id := r.BlobID(b)
	if _, err := r.SaveBlob(context.Background(), DataBlob, id, b); err != nil {
		t.Fatal(err)
	}
	return id
}

// SavePatch stores the block whole when a patch is not possible or not worth it.
func TestPatchFallsBackToWhole(t *testing.T) {
	ctx := context.Background()
	dir, r := newRepo(t)
	base := randBlock(2, testBlockSize)
	mustSaveWhole(t, r, base)
	blocks := map[string][]byte{}

	// Base missing.
	missing := randBlock(3, testBlockSize)
	b := changeSubs(missing, testSubSize, []int{0}, 3)
	if id, added := mustPatch(t, r, missing, b, []int{0}); !added || !r.IsFullBlob(id) {
		t.Fatal("base missing: not stored whole")
	}
	blocks["base missing"] = b

	// Base is a patch.
	p1 := changeSubs(base, testSubSize, []int{2}, 4)
	if id, _ := mustPatch(t, r, base, p1, []int{2}); r.IsFullBlob(id) {
		t.Fatal("p1 not stored as a patch")
	}
	p2 := changeSubs(p1, testSubSize, []int{3}, 5)
	if id, added := mustPatch(t, r, p1, p2, []int{3}); !added || !r.IsFullBlob(id) {
		t.Fatal("base is a patch: not stored whole")
	}
	blocks["p1"], blocks["base is a patch"] = p1, p2

	// Every sub-block changed: a patch would be bigger than the block.
	all := make([]int, testBlockSize/testSubSize)
	for i := range all {
		all[i] = i
	}
	b = changeSubs(base, testSubSize, all, 6)
	if id, added := mustPatch(t, r, base, b, all); !added || !r.IsFullBlob(id) {
		t.Fatal("all changed: not stored whole")
	}
	blocks["all changed"] = b

	// A base of another length (the last block of a disk that grew).
	short := randBlock(7, testBlockSize/2)
	mustSaveWhole(t, r, short)
	b = append(bytes.Clone(short), randBlock(8, testBlockSize/2)...)
	if id, added := mustPatch(t, r, short, b, []int{8, 9, 10, 11, 12, 13, 14, 15}); !added || !r.IsFullBlob(id) {
		t.Fatal("base of another length: not stored whole")
	}
	blocks["other length"] = b

	// No change listed but another id: the caller is wrong, store whole.
	b = changeSubs(base, testSubSize, []int{4}, 9)
	if id, added := mustPatch(t, r, base, b, nil); !added || !r.IsFullBlob(id) {
		t.Fatal("empty change list: not stored whole")
	}
	blocks["empty list"] = b

	// Invalid arguments are the caller's bug.
	b = changeSubs(base, testSubSize, []int{4}, 10)
	for _, c := range []struct {
		sub     int
		changed []int
	}{{0, []int{1}}, {testSubSize, []int{3, 2}}, {testSubSize, []int{16}}, {testSubSize, []int{-1}}, {testSubSize, []int{1, 1}}} {
		if _, err := r.SavePatch(ctx, r.BlobID(b), r.BlobID(base), b, c.sub, c.changed); err == nil {
			t.Errorf("sub %d, changed %v accepted", c.sub, c.changed)
		}
	}
	if r.HasBlob(DataBlob, r.BlobID(b)) {
		t.Error("a refused patch left a reservation")
	}

	// A repository of format 1 never gets a patch.
	r.cfg.Version = formatVersionPlain
	b = changeSubs(base, testSubSize, []int{4}, 11)
	if id, added := mustPatch(t, r, base, b, []int{4}); !added || !r.IsFullBlob(id) {
		t.Fatal("format 1: not stored whole")
	}
	r.cfg.Version = FormatVersion
	blocks["format 1"] = b

	mustFlush(t, r)
	r2 := testOpen(t, dir, nil)
	for name, b := range blocks {
		if full := r2.IsFullBlob(r2.BlobID(b)); full == (name == "p1") {
			t.Errorf("%s: whole = %v after reopen", name, full)
		}
		mustLoad(t, r2, r2.BlobID(b), b)
	}
}

// Random change sets, sub-block sizes and block lengths (short last sub-blocks) round-trip;
// a false claim (an unlisted sub-block differs) is caught as damage, never returned.
func TestPatchRandom(t *testing.T) {
	ctx := context.Background()
	dir, r := newRepo(t)
	rng := rand.New(rand.NewPCG(1, 2))
	type item struct {
		id    ID
		block []byte
		lie   bool
	}
	var items []item
	for i := 0; i < 150; i++ {
		n := testBlockSize
		if i%3 == 0 {
			n = 1 + rng.IntN(testBlockSize)
		}
		sub := []int{512, 1000, 4096, testSubSize}[rng.IntN(4)]
		base := randBlock(uint64(100+i), n)
		mustSaveWhole(t, r, base)
		subs := (n + sub - 1) / sub
		var changed []int
		for k := 0; k < subs; k++ {
			if rng.IntN(4) == 0 {
				changed = append(changed, k)
			}
		}
		if len(changed) == 0 {
			changed = []int{subs - 1}
		}
		block := changeSubs(base, sub, changed, uint64(100+i))
		if got := diffSubs(base, block, sub); len(got) != len(changed) {
			t.Fatalf("test bug: diff %v, changed %v", got, changed)
		}
		lie := i%10 == 9 && len(changed) > 1
		claim := changed
		if lie {
			claim = changed[1:] // the first changed sub-block is not listed
		}
		id := r.BlobID(block)
		if _, err := r.SavePatch(ctx, id, r.BlobID(base), block, sub, claim); err != nil {
			t.Fatal(err)
		}
		items = append(items, item{id, block, lie})
	}
	mustFlush(t, r)
	r2 := testOpen(t, dir, nil)
	patches := 0
	for _, it := range items {
		if isPatchBlob(r2, it.id) {
			patches++
		}
		got, err := r2.LoadBlob(ctx, DataBlob, it.id, nil)
		if it.lie {
			if !isErr(err, ErrCorrupt) || !isPatchBlob(r2, it.id) {
				t.Fatalf("false claim: got %v", err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, it.block) {
			t.Fatalf("block %s: %v", it.id.Short(), err)
		}
	}
	if patches < len(items)/2 {
		t.Fatalf("only %d of %d blocks stored as patches", patches, len(items))
	}
	rep, err := r2.Check(ctx, CheckOptions{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	lies := 0
	for _, it := range items {
		lies += btoi(it.lie)
	}
	if len(rep.Errors) != lies {
		t.Fatalf("check --read-data: %d errors, want %d (one per false claim): %v", len(rep.Errors), lies, rep.Errors)
	}
}

// parsePatch rejects every malformed patch instead of overlaying out of bounds.
func TestParsePatchRejects(t *testing.T) {
	block := randBlock(5, 10000)
	good := encodePatch(nil, ID{1}, block, 1024, []int{0, 9})
	if p, err := parsePatch(good); err != nil || p.full != 10000 || p.count != 2 || len(p.data) != 1024+10000-9*1024 {
		t.Fatalf("good patch: %+v, %v", p, err)
	}
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for name, b := range map[string][]byte{
		"short":         good[:patchHeaderSize-1],
		"magic":         mod(func(b []byte) []byte { b[0] = 'X'; return b }),
		"version":       mod(func(b []byte) []byte { b[4] = 2; return b }),
		"reserved":      mod(func(b []byte) []byte { b[6] = 1; return b }),
		"zero length":   mod(func(b []byte) []byte { b[40], b[41] = 0, 0; return b }),
		"zero sub":      mod(func(b []byte) []byte { b[44], b[45] = 0, 0; return b }),
		"count":         mod(func(b []byte) []byte { b[48] = 200; return b }),
		"not rising":    mod(func(b []byte) []byte { b[52] = 9; return b }),
		"out of range":  mod(func(b []byte) []byte { b[56] = 10; return b }),
		"data short":    good[:len(good)-1],
		"data too long": append(bytes.Clone(good), 0),
	} {
		if _, err := parsePatch(b); !isErr(err, ErrCorrupt) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// forcePatch stores a patch SavePatch would refuse (a base that is a patch, a missing base).
func forcePatch(t testing.TB, r *Repository, id, base ID, block []byte, changed []int) {
	t.Helper()
	r.mu.Lock()
	r.idx.overlay[id] = indexEntry{pack: pendingPack, typ: DataBlob, comp: compPatch}
	r.mu.Unlock()
	plain := encodePatch(nil, base, block, testSubSize, changed)
	if _, err := r.storeBlob(context.Background(), packEntry{Type: DataBlob, ID: id, Flags: blobFlagPatch}, plain); err != nil {
		t.Fatal(err)
	}
}

func TestPatchBaseProblemsOnLoad(t *testing.T) {
	ctx := context.Background()
	_, r := newRepo(t)
	base := randBlock(20, testBlockSize)
	p1 := changeSubs(base, testSubSize, []int{1}, 20)
	p2 := changeSubs(p1, testSubSize, []int{2}, 21)
	mustSaveWhole(t, r, base)
	mustPatch(t, r, base, p1, []int{1})
	forcePatch(t, r, r.BlobID(p2), r.BlobID(p1), p2, []int{2})
	ghost := randBlock(22, testBlockSize)
	p3 := changeSubs(ghost, testSubSize, []int{3}, 22)
	forcePatch(t, r, r.BlobID(p3), r.BlobID(ghost), p3, []int{3})
	mustFlush(t, r)

	_, err := r.LoadBlob(ctx, DataBlob, r.BlobID(p2), nil)
	if !isErr(err, ErrCorrupt) || !strings.Contains(err.Error(), "is itself a patch") {
		t.Fatalf("base is a patch: %v", err)
	}
	_, err = r.LoadBlob(ctx, DataBlob, r.BlobID(p3), nil)
	if !isErr(err, ErrBlobNotFound) || !strings.Contains(err.Error(), r.BlobID(p3).Short()) ||
		!strings.Contains(err.Error(), r.BlobID(ghost).Short()) {
		t.Fatalf("base missing: %v", err)
	}
	mustLoad(t, r, r.BlobID(p1), p1)
}

// Packs describe themselves: rebuild-index restores the patch flag from the pack headers.
func TestRebuildIndexKeepsPatchFlag(t *testing.T) {
	for _, enc := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "encrypted"}[enc], func(t *testing.T) {
			ctx := context.Background()
			dir, r, mod := newRepoEncryptedIf(t, enc)
			base := randBlock(30, testBlockSize)
			block := changeSubs(base, testSubSize, []int{7}, 30)
			mustSaveWhole(t, r, base)
			id, _ := mustPatch(t, r, base, block, []int{7})
			mustFlush(t, r)
			ents, _ := os.ReadDir(filepath.Join(dir, "index"))
			for _, e := range ents {
				os.Remove(filepath.Join(dir, "index", e.Name()))
			}
			r2 := testOpen(t, dir, mod)
			if r2.HasBlob(DataBlob, id) {
				t.Fatal("index files not removed")
			}
			if _, err := r2.RebuildIndex(ctx); err != nil {
				t.Fatal(err)
			}
			if !isPatchBlob(r2, id) || r2.IsFullBlob(id) {
				t.Fatal("rebuild-index lost the patch flag")
			}
			mustLoad(t, testOpen(t, dir, mod), id, block)
		})
	}
}

// The same block stored whole and as a patch (two writers at once): the index uses the whole
// copy, so a patch based on it stays readable whichever copy prune keeps.
func TestIndexPrefersWholeCopy(t *testing.T) {
	x := newIndex()
	id := ID{7}
	x.appendBase(ID{1}, []packBlob{{packEntry: packEntry{Type: DataBlob, ID: id, Flags: blobFlagPatch, Raw: 100, Stored: 100}}})
	x.appendBase(ID{2}, []packBlob{{packEntry: packEntry{Type: DataBlob, ID: id, Raw: 200, Stored: 200}}})
	x.sortBase()
	e, ok := x.lookup(id)
	if !ok || e.comp&compPatch != 0 || x.packs[e.pack] != (ID{2}) || len(x.base) != 1 {
		t.Fatalf("lookup: %+v, %v", e, ok)
	}
}

// backupBlocks stores a disk of blocks like images/disk with a fingerprint cache: a block that
// differs from prev's block is stored as a patch of it.
func backupBlocks(t testing.TB, r *Repository, source string, blocks, prev [][]byte, when time.Time) ID {
	t.Helper()
	ctx := context.Background()
	disk := Disk{Name: "disk0", Path: source, Format: "raw", Size: int64(len(blocks)) * testBlockSize, BlockSize: testBlockSize}
	c := BlockMapChunk{}
	for i, b := range blocks {
		id := r.BlobID(b)
		var err error
		if prev != nil && !bytes.Equal(prev[i], b) {
			_, err = r.SavePatch(ctx, id, r.BlobID(prev[i]), b, testSubSize, diffSubs(prev[i], b, testSubSize))
		} else {
			_, err = r.SaveBlob(ctx, DataBlob, id, b)
		}
		if err != nil {
			t.Fatal(err)
		}
		c.IDs = append(c.IDs, id)
		disk.Allocated += int64(len(b))
	}
	mb, _ := c.MarshalBinary()
	cid := r.BlobID(mb)
	if _, err := r.SaveBlob(ctx, TreeBlob, cid, mb); err != nil {
		t.Fatal(err)
	}
	disk.Map = []ID{cid}
	sid, err := r.SaveSnapshot(ctx, &Snapshot{Time: when, Host: "testhost", Kind: SnapshotImage, Source: source, Disks: []Disk{disk}})
	if err != nil {
		t.Fatal(err)
	}
	return sid
}

func verifyBlocks(t testing.TB, r *Repository, sid ID, blocks [][]byte) {
	t.Helper()
	ctx := context.Background()
	sn, err := r.LoadSnapshot(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := r.LoadBlob(ctx, TreeBlob, sn.Disks[0].Map[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	var c BlockMapChunk
	if err := c.UnmarshalBinary(mb); err != nil {
		t.Fatal(err)
	}
	if len(c.IDs) != len(blocks) {
		t.Fatalf("%d blocks, want %d", len(c.IDs), len(blocks))
	}
	for i, id := range c.IDs {
		got, err := r.LoadBlob(ctx, DataBlob, id, nil)
		if err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
		if !bytes.Equal(got, blocks[i]) {
			t.Fatalf("block %d differs", i)
		}
	}
}

// patchedDisk returns a disk of n random blocks and the next day's version of it, where every
// every-th block has two sub-blocks rewritten.
func patchedDisk(seed uint64, n, every int) (day1, day2 [][]byte) {
	for i := 0; i < n; i++ {
		b := randBlock(seed*1000+uint64(i), testBlockSize)
		day1 = append(day1, b)
		if i%every == 0 {
			b = changeSubs(b, testSubSize, []int{i % 16, (i + 5) % 16}, seed*1000+uint64(i))
		}
		day2 = append(day2, b)
	}
	return day1, day2
}

// The data-loss case: the snapshot that stored the bases whole is forgotten, the one that
// uses patches stays. Prune must keep the bases (and repack them and the patches with their
// flags), and the patched disk must restore byte-identical.
func TestPruneKeepsPatchBases(t *testing.T) {
	for _, enc := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "encrypted"}[enc], func(t *testing.T) {
			ctx := context.Background()
			var dir string
			mod := func(o *Options) { o.PackSize = 4 << 20; o.Packers = 1 }
			if enc {
				dir, _ = newEncryptedRepo(t)
				mod = func(o *Options) { o.PackSize = 4 << 20; o.Packers = 1; o.Password = []byte(testPassword) }
			} else {
				dir, _ = newRepo(t)
			}
			r := testOpen(t, dir, mod)
			day1, day2 := patchedDisk(1, 24, 2)
			orphan, orphan2 := patchedDisk(2, 14, 1)
			for _, b := range orphan {
				mustSaveWhole(t, r, b)
			}
			s1 := backupBlocks(t, r, "vm", day1, nil, t0)
			for _, b := range orphan2 { // in the patches' pack, so it is repacked too
				mustSaveWhole(t, r, b)
			}
			s2 := backupBlocks(t, r, "vm", day2, day1, t0.Add(24*time.Hour))
			if st := r.Stats(); st.BlobsPatched != 12 {
				t.Fatalf("%d blocks stored as patches, want 12", st.BlobsPatched)
			}
			if err := r.RemoveSnapshot(ctx, s1); err != nil {
				t.Fatal(err)
			}
			// Two data packs: orphans with bases, orphans with patches; both are repacked. Each
			// snapshot's block maps are in a tree pack of their own: four packs.
			if n := countFiles(t, r.Backend(), store.KindData); n != 4 {
				t.Fatalf("%d packs, want 4", n)
			}
			rep, err := r.Prune(ctx, PruneOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.PacksRepacked != 2 || rep.BlobsUsed != 24+12+1 {
				t.Fatalf("prune report %+v", rep)
			}
			r2 := testOpen(t, dir, mod)
			verifyBlocks(t, r2, s2, day2)
			for i := 0; i < len(day2); i += 2 {
				if !isPatchBlob(r2, r2.BlobID(day2[i])) {
					t.Fatalf("block %d lost its patch flag in the repack", i)
				}
			}
			if r2.HasBlob(DataBlob, r2.BlobID(orphan[0])) || r2.HasBlob(DataBlob, r2.BlobID(orphan2[0])) {
				t.Error("orphans survived")
			}
			mustCheck(t, r2, true)
			// A second prune has nothing to do.
			rep, err = r2.Prune(ctx, PruneOptions{})
			if err != nil || rep.PacksDeleted+rep.PacksRepacked != 0 {
				t.Fatalf("second prune: %+v, %v", rep, err)
			}
			verifyBlocks(t, testOpen(t, dir, mod), s2, day2)
		})
	}
}

// Forgetting the snapshot that stored the bases, whose packs hold nothing else the kept
// snapshot names: those packs are not "unused" and are not deleted.
func TestPruneKeepsBasePacks(t *testing.T) {
	ctx := context.Background()
	dir, r := newRepo(t)
	day1, day2 := patchedDisk(3, 12, 1)
	s1 := backupBlocks(t, r, "vm", day1, nil, t0) // day1's blocks in their own packs
	s2 := backupBlocks(t, r, "vm", day2, day1, t0.Add(24*time.Hour))
	if err := r.RemoveSnapshot(ctx, s1); err != nil {
		t.Fatal(err)
	}
	rep, err := r.Prune(ctx, PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.BlobsUsed != 12+12+1 {
		t.Fatalf("prune report %+v", rep)
	}
	r2 := testOpen(t, dir, nil)
	verifyBlocks(t, r2, s2, day2)
	mustCheck(t, r2, true)
}

// A used patch whose base is gone: prune refuses and deletes nothing; check reports the patch
// and the snapshot.
func TestPatchBaseMissing(t *testing.T) {
	ctx := context.Background()
	dir, r := newRepo(t)
	day1, day2 := patchedDisk(4, 6, 1)
	for _, b := range day1 {
		mustSaveWhole(t, r, b)
	}
	mustFlush(t, r) // the bases in a pack of their own
	basePacks := countFiles(t, r.Backend(), store.KindData)
	mustSaveWhole(t, r, randBlock(77, testBlockSize)) // an orphan: prune would delete it
	s2 := backupBlocks(t, r, "vm", day2, day1, t0)
	// Delete the bases' pack and rebuild the index: the patches' bases are not indexed.
	r.mu.Lock()
	e, _ := r.idx.lookup(r.BlobID(day1[0]))
	basePack := r.idx.packs[e.pack]
	r.mu.Unlock()
	if basePacks != 1 {
		t.Fatalf("%d base packs, want 1", basePacks)
	}
	if err := os.Remove(filepath.Join(dir, "data", basePack.String()[:2], basePack.String())); err != nil {
		t.Fatal(err)
	}
	if _, err := r.RebuildIndex(ctx); err != nil {
		t.Fatal(err)
	}
	before := disktest.TreeState(t, dir)
	_, err := r.Prune(ctx, PruneOptions{})
	if !isErr(err, ErrBlobNotFound) || !strings.Contains(err.Error(), "nothing was deleted") ||
		!strings.Contains(err.Error(), "needs base blob") {
		t.Fatalf("prune with a missing base: %v", err)
	}
	after := disktest.TreeState(t, dir)
	for name := range before {
		if _, ok := after[name]; !ok && !strings.HasPrefix(name, "locks") {
			t.Fatalf("prune deleted %s", name)
		}
	}

	rep, err := r.Check(ctx, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	patches := 0
	for _, p := range rep.Errors {
		if p.Kind == "blob" && strings.Contains(p.Message, "not in the index") {
			patches++
		}
	}
	if patches != 6 || len(rep.DamagedSnapshots) != 1 || rep.DamagedSnapshots[0] != s2 {
		t.Fatalf("check: %d patch problems, damaged %v: %v", patches, rep.DamagedSnapshots, rep.Errors)
	}
}

// check --read-data rebuilds every patch: a damaged base names the snapshots using its patches.
func TestCheckReadDataDamagedBase(t *testing.T) {
	ctx := context.Background()
	dir, r := newRepo(t)
	day1, day2 := patchedDisk(5, 4, 1)
	for _, b := range day1 {
		mustSaveWhole(t, r, b)
	}
	mustFlush(t, r)
	r.mu.Lock()
	e, _ := r.idx.lookup(r.BlobID(day1[0]))
	basePack := r.idx.packs[e.pack]
	r.mu.Unlock()
	// s2 names only patches of day1's blocks: the damaged pack matters to it through them.
	s2 := backupBlocks(t, r, "vm2", day2, day1, t0)
	if rep := mustCheck(t, r, true); rep.BlobsRead == 0 {
		t.Fatal("nothing read")
	}
	p := filepath.Join(dir, "data", basePack.String()[:2], basePack.String())
	b, _ := os.ReadFile(p)
	os.Chmod(p, 0o600)
	b[int(e.offset)+10] ^= 1 // inside day1[0], the base of day2[0]
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := r.Check(ctx, CheckOptions{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.DamagedSnapshots) != 1 || rep.DamagedSnapshots[0] != s2 || len(rep.DamagedPacks) != 1 ||
		rep.DamagedPacks[0] != basePack {
		t.Fatalf("damaged snapshots %v, packs %v: %v", rep.DamagedSnapshots, rep.DamagedPacks, rep.Errors)
	}
	found := false
	for _, p := range rep.Errors {
		found = found || p.Kind == "snapshot" && strings.Contains(p.Message, "is a patch of blob "+r.BlobID(day1[0]).Short())
	}
	if !found {
		t.Fatalf("no snapshot error names the patch's base: %v", rep.Errors)
	}
	if _, err := r.LoadBlob(ctx, DataBlob, r.BlobID(day2[0]), nil); !isErr(err, ErrCorrupt) {
		t.Fatalf("load a patch of a damaged base: %v", err)
	}
}

// A prune killed while it repacks patches and bases, after its new index, and while deleting:
// the patched disk still restores, check passes, the next prune finishes.
func TestKilledPruneWithPatches(t *testing.T) {
	for _, at := range []string{HookPackUploaded, HookPruneIndex, HookPruneDelete} {
		t.Run(at, func(t *testing.T) {
			ctx := context.Background()
			dir := filepath.Join(t.TempDir(), "repo")
			testInit(t, dir)
			w := testOpen(t, dir, func(o *Options) { o.PackSize = 4 << 20; o.Packers = 1 })
			day1, day2 := patchedDisk(6, 16, 2)
			orphan, _ := patchedDisk(7, 10, 1)
			for _, b := range orphan {
				mustSaveWhole(t, w, b)
			}
			s1 := backupBlocks(t, w, "vm", day1, nil, t0)
			s2 := backupBlocks(t, w, "vm", day2, day1, t0.Add(24*time.Hour))
			gone, _ := patchedDisk(8, 4, 1)
			g := backupBlocks(t, w, "gone", gone, nil, t0)
			for _, s := range []ID{s1, g} {
				if err := w.RemoveSnapshot(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			killPruneThenFinish(t, dir, at, 1, func(r *Repository) { verifyBlocks(t, r, s2, day2) },
				orphan[1], gone[1])
		})
	}
}
