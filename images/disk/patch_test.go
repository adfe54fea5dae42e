package disk

import (
	"context"
	"encoding/binary"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/images/disk/disktest"

	"github.com/zeebo/xxh3"

	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/images/repo"
)

const (
	patchBlock = 64 * kib              // 16 sub-blocks of 4 KiB
	patchSub   = patchBlock / 16       // subBlockSize(patchBlock)
	patchN     = 6                     // data blocks of the test image
	patchSize  = patchN*patchBlock + 5 // and a short last block of 5 bytes (one sub-block)
)

// patchFixture is an image of patchN random blocks backed up into a memblobs.PatchStore.
type patchFixture struct {
	ps    *memblobs.PatchStore
	src   string
	cache string
}

const patchRepoID = "patch-test-repository"

func newPatchFixture(t *testing.T) *patchFixture {
	if subBlockSize(patchBlock) != patchSub {
		t.Fatalf("sub-block size %d, want %d", subBlockSize(patchBlock), patchSub)
	}
	fx := &patchFixture{ps: memblobs.NewPatchStore(patchBlock), src: tempPath(t, "disk.img")}
	makeSparse(t, fx.src, patchSize, region{0, memblobs.RandBytes(100, patchSize)})
	fx.cache = CachePath(CacheDir(t.TempDir()), patchRepoID, fx.src)
	return fx
}

func (fx *patchFixture) opts() Options { return Options{Cache: fx.cache, RepoID: patchRepoID} }

// run backs the image up, checks the restore through the store is byte-identical and returns
// the disk's block ids (zero for holes).
func (fx *patchFixture) run(t *testing.T, o Options) (repo.Stats, []repo.ID) {
	t.Helper()
	ctx := context.Background()
	d, st, err := Backup(ctx, fx.ps, fx.src, o)
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	dst := tempPath(t, "restored.img")
	if err := Restore(ctx, fx.ps, d, dst, RestoreOptions{}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if apparent(t, dst) != patchSize || disktest.FileSum(t, dst) != disktest.FileSum(t, fx.src) {
		t.Fatal("restored image differs from the source")
	}
	var ids []repo.ID
	if err := walkMap(ctx, fx.ps, d, func(_ int64, id repo.ID) error { ids = append(ids, id); return nil }); err != nil {
		t.Fatal(err)
	}
	return st, ids
}

// write overwrites the given sub-blocks of block with new random data.
func (fx *patchFixture) write(t *testing.T, block int, subs ...int) {
	t.Helper()
	f, err := os.OpenFile(fx.src, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, s := range subs {
		writes++ // every write different, even of the same sub-block twice
		data := memblobs.RandBytes(1000+writes, patchSub)
		if _, err := f.WriteAt(data, int64(block*patchBlock+s*patchSub)); err != nil {
			t.Fatal(err)
		}
	}
}

var writes uint64

// wantPatch checks that id is a patch of base keeping exactly the sub-blocks changed.
func (fx *patchFixture) wantPatch(t *testing.T, id, base repo.ID, changed ...int) {
	t.Helper()
	b, c, ok := fx.ps.Patch(id)
	if !ok || b != base || !slices.Equal(c, changed) {
		t.Fatalf("block %s: patch %v of %s changing %v; want a patch of %s changing %v", id.Short(), ok, b.Short(), c, base.Short(), changed)
	}
}

func (fx *patchFixture) wantWhole(t *testing.T, id repo.ID) {
	t.Helper()
	if _, _, ok := fx.ps.Patch(id); ok || !fx.ps.IsFullBlob(id) {
		t.Fatalf("block %s is not a whole blob (patch %v)", id.Short(), ok)
	}
}

func TestPatchOneSubBlockChanged(t *testing.T) {
	fx := newPatchFixture(t)
	st, base := fx.run(t, fx.opts())
	if st.BlocksPatched != 0 || st.BlobsNew != patchN+1+1 { // blocks, the short one, the map chunk
		t.Fatalf("first run: %+v", st)
	}
	fx.write(t, 1, 5)
	fx.write(t, 3, 0, 2, 4, 6, 8, 10, 12, 15) // exactly half: still a patch
	st, ids := fx.run(t, fx.opts())
	if st.BlocksPatched != 2 || st.BlocksCached != patchN+1-2 || fx.ps.Patched.Load() != 2 {
		t.Fatalf("two changed blocks: %+v, %d patches stored", st, fx.ps.Patched.Load())
	}
	fx.wantPatch(t, ids[1], base[1], 5)
	fx.wantPatch(t, ids[3], base[3], 0, 2, 4, 6, 8, 10, 12, 15)
	chunk, err := (&repo.BlockMapChunk{IDs: ids}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(9*patchSub + len(chunk)); st.BytesAdded != want {
		t.Fatalf("bytes added %d, want %d: the 9 sub-blocks the patches keep and the map chunk", st.BytesAdded, want)
	}
}

func TestPatchTooManyChangedStoredWhole(t *testing.T) {
	fx := newPatchFixture(t)
	fx.run(t, fx.opts())
	fx.write(t, 2, 0, 1, 2, 3, 4, 5, 6, 7, 8) // 9 of 16
	st, ids := fx.run(t, fx.opts())
	if st.BlocksPatched != 0 {
		t.Fatalf("9 of 16 changed: %d patched", st.BlocksPatched)
	}
	fx.wantWhole(t, ids[2])
	// The whole blob is the new base.
	fx.write(t, 2, 9)
	st, next := fx.run(t, fx.opts())
	if st.BlocksPatched != 1 {
		t.Fatalf("after the whole blob: %d patched", st.BlocksPatched)
	}
	fx.wantPatch(t, next[2], ids[2], 9)
}

// A block patched once is patched against the same whole blob again, never against its patch:
// the pieces changed since the base add up, also across a run where it did not change.
func TestPatchNextRunSameBase(t *testing.T) {
	fx := newPatchFixture(t)
	_, base := fx.run(t, fx.opts())
	fx.write(t, 4, 1)
	_, r2 := fx.run(t, fx.opts())
	fx.wantPatch(t, r2[4], base[4], 1)

	st, r3 := fx.run(t, fx.opts()) // nothing changed
	if st.BlocksCached != patchN+1 || st.BlocksPatched != 0 || r3[4] != r2[4] {
		t.Fatalf("unchanged run: %+v", st)
	}
	fx.write(t, 4, 7)
	_, r4 := fx.run(t, fx.opts())
	fx.wantPatch(t, r4[4], base[4], 1, 7)

	fx.write(t, 4, 1) // again, other data
	_, r5 := fx.run(t, fx.opts())
	fx.wantPatch(t, r5[4], base[4], 1, 7)
}

// A base the repository no longer holds whole (pruned, say) is not patched against: the block
// is stored whole and becomes the new base.
func TestPatchBaseMissingStoresWhole(t *testing.T) {
	fx := newPatchFixture(t)
	_, base := fx.run(t, fx.opts())
	fx.ps.Remove(repo.DataBlob, base[0])
	fx.write(t, 0, 3)
	st, ids := fx.run(t, fx.opts())
	if st.BlocksPatched != 0 {
		t.Fatalf("base gone: %d patched", st.BlocksPatched)
	}
	fx.wantWhole(t, ids[0])
	fx.write(t, 0, 4)
	_, next := fx.run(t, fx.opts())
	fx.wantPatch(t, next[0], ids[0], 4)
}

// Patches disabled (a repository of an older format) or --rehash: whole blobs, which are the
// bases of the next run's patches.
func TestPatchDisabledOrRehashStoresWhole(t *testing.T) {
	for _, c := range []string{"disabled", "rehash"} {
		t.Run(c, func(t *testing.T) {
			fx := newPatchFixture(t)
			fx.run(t, fx.opts())
			o := fx.opts()
			if c == "disabled" {
				fx.ps.Enabled.Store(false)
			} else {
				o.Rehash = true
			}
			fx.write(t, 2, 6)
			st, ids := fx.run(t, o)
			if st.BlocksPatched != 0 || fx.ps.Patched.Load() != 0 {
				t.Fatalf("%s: %d patched", c, st.BlocksPatched)
			}
			fx.wantWhole(t, ids[2])
			fx.ps.Enabled.Store(true)
			fx.write(t, 2, 11)
			_, next := fx.run(t, fx.opts())
			fx.wantPatch(t, next[2], ids[2], 11) // the whole blob is the new base
		})
	}
}

// A store that is not a PatchStore gets whole blobs, and its cache entries name bases: also a
// block whose content the store had already (reverted to its first version).
func TestPatchPlainStoreStoresWhole(t *testing.T) {
	fx := newPatchFixture(t)
	plain := fx.ps.Store // the same blobs, without the PatchStore methods
	backup := func() repo.Disk {
		d, _, err := Backup(context.Background(), plain, fx.src, fx.opts())
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	backup()
	orig, err := os.ReadFile(fx.src)
	if err != nil {
		t.Fatal(err)
	}
	fx.write(t, 5, 0)
	backup()
	makeSparse(t, fx.src, patchSize, region{0, orig}) // block 5 as in the first run
	backup()
	fx.write(t, 5, 1)
	st, ids := fx.run(t, fx.opts())
	if st.BlocksPatched != 1 || fx.ps.Patched.Load() != 1 {
		t.Fatalf("%d patched, want 1", st.BlocksPatched)
	}
	b, c, _ := fx.ps.Patch(ids[5])
	if b != plain.BlobID(orig[5*patchBlock:6*patchBlock]) || !slices.Equal(c, []int{1}) {
		t.Fatalf("patch of %s changing %v, want a patch of the first version changing [1]", b.Short(), c)
	}
}

// downgradeCache rewrites a version 2 cache file as version 1: the same entries without bases.
func downgradeCache(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := slices.Clone(b[:fpHeaderSize])
	binary.LittleEndian.PutUint32(out[16:], 1)
	binary.LittleEndian.PutUint64(out[112:], xxh3.Hash(out[:112]))
	for e := b[fpHeaderSize:]; len(e) > 0; e = e[fpEntrySize:] {
		v1 := slices.Clone(e[:56])
		v1 = binary.LittleEndian.AppendUint64(v1, xxh3.Hash(v1))
		out = append(out, v1...)
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A version 1 cache still vouches for unchanged blocks; it names no bases, so a changed block is
// stored whole once and patched from then on.
func TestPatchVersion1CacheStillUsed(t *testing.T) {
	fx := newPatchFixture(t)
	_, base := fx.run(t, fx.opts())
	downgradeCache(t, fx.cache)
	fx.write(t, 3, 2)
	st, ids := fx.run(t, fx.opts())
	if st.BlocksCached != patchN || st.BlocksPatched != 0 {
		t.Fatalf("version 1 cache: %+v", st)
	}
	fx.wantWhole(t, ids[3])
	if ids[3] == base[3] {
		t.Fatal("the changed block kept its id")
	}
	b, err := os.ReadFile(fx.cache)
	if err != nil || binary.LittleEndian.Uint32(b[16:]) != fpVersion {
		t.Fatalf("cache not rewritten as version %d (%v)", fpVersion, err)
	}
	fx.write(t, 3, 9)
	_, next := fx.run(t, fx.opts())
	fx.wantPatch(t, next[3], ids[3], 9)
}

// A wrong claim (a sub-block the cache says is unchanged, but is not) is caught when the patch
// is loaded: its rebuilt block does not match its id. It never restores wrong data.
func TestPatchWrongClaimFailsLoad(t *testing.T) {
	fx := newPatchFixture(t)
	fx.run(t, fx.opts())
	fx.write(t, 1, 3, 4)
	// Plant the new sub-block 4's hash as the base's in block 1's entry (entry check resealed),
	// as a fast-hash collision would.
	data, err := os.ReadFile(fx.src)
	if err != nil {
		t.Fatal(err)
	}
	c, err := os.ReadFile(fx.cache)
	if err != nil {
		t.Fatal(err)
	}
	seed := binary.LittleEndian.Uint64(c[24:])
	e := c[fpHeaderSize+1*fpEntrySize : fpHeaderSize+2*fpEntrySize]
	binary.LittleEndian.PutUint64(e[88+8*4:], xxh3.HashSeed(data[patchBlock+4*patchSub:patchBlock+5*patchSub], seed))
	binary.LittleEndian.PutUint64(e[fpEntrySize-8:], xxh3.Hash(e[:fpEntrySize-8]))
	if err := os.WriteFile(fx.cache, c, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	d, st, err := Backup(ctx, fx.ps, fx.src, fx.opts())
	if err != nil || st.BlocksPatched != 1 {
		t.Fatalf("backup: %v, %+v", err, st)
	}
	err = Restore(ctx, fx.ps, d, tempPath(t, "restored.img"), RestoreOptions{})
	if err == nil || !strings.Contains(err.Error(), "does not match id") {
		t.Fatalf("restore of a patch built on a wrong claim: %v", err)
	}
}

// The sub-block rule: blockSize/16, at least 4 KiB.
func TestSubBlockSize(t *testing.T) {
	for bs, want := range map[int]int{4 * kib: 4 * kib, 16 * kib: 4 * kib, 64 * kib: 4 * kib, 128 * kib: 8 * kib, 1 << 20: 64 * kib, 8 << 20: 512 * kib} {
		if got := subBlockSize(bs); got != want {
			t.Errorf("subBlockSize(%d) = %d, want %d", bs, got, want)
		}
	}
	// A block of one sub-block is never patched; a short last block has fewer sub-blocks.
	if worthPatching([]int{0}, 4*kib, 4*kib) || !worthPatching([]int{0}, 8*kib, 4*kib) || worthPatching([]int{0, 1}, 12*kib, 4*kib) {
		t.Error("worthPatching: wrong at small blocks")
	}
}
