package disk

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/disk/disktest"

	"github.com/zeebo/xxh3"

	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/images/repo"
)

// countingStore counts what a backup asks of the repository: BlobID is BLAKE3 (the cost the
// cache exists to skip), SaveBlob of data blobs is a block offered for storing.
type countingStore struct {
	repo.BlobStore
	ids       atomic.Int64
	dataSaves atomic.Int64
}

func (s *countingStore) BlobID(b []byte) repo.ID {
	s.ids.Add(1)
	return s.BlobStore.BlobID(b)
}

func (s *countingStore) SaveBlob(ctx context.Context, t repo.BlobType, id repo.ID, b []byte) (bool, error) {
	if t == repo.DataBlob {
		s.dataSaves.Add(1)
	}
	return s.BlobStore.SaveBlob(ctx, t, id, b)
}

// cacheRun is one backup through a countingStore.
type cacheRun struct {
	d      repo.Disk
	st     repo.Stats
	hashed int64 // BLAKE3 of data blocks: BlobID calls minus one per map chunk
	saves  int64 // data blocks offered to SaveBlob
}

func backupCounted(t *testing.T, bs repo.BlobStore, src string, opts Options) cacheRun {
	t.Helper()
	cs := &countingStore{BlobStore: bs}
	d, st, err := Backup(context.Background(), cs, src, opts)
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	return cacheRun{d: d, st: st, hashed: cs.ids.Load() - int64(len(d.Map)), saves: cs.dataSaves.Load()}
}

// cacheFixture is a real repository, a sparse image in it and a cache file location.
type cacheFixture struct {
	dir    string // the repository's folder
	r      *repo.Repository
	src    string
	size   int64
	data   int // blocks that hold non-zero data
	cache  string
	repoID string
}

func newCacheFixture(t *testing.T) *cacheFixture {
	src, size, dataBlocks, zeroBlocks := roundTripImage(t)
	dir, r := memblobs.LocalRepo(t, testBlock, repo.ChunkerParams{})
	fx := &cacheFixture{dir: dir, r: r, src: src, size: size, repoID: r.Config().ID,
		data: len(dataBlocks) - len(zeroBlocks)}
	fx.cache = CachePath(CacheDir(t.TempDir()), fx.repoID, src)
	return fx
}

func (fx *cacheFixture) opts() Options { return Options{Cache: fx.cache, RepoID: fx.repoID} }

// commit saves a snapshot of d, reopens the repository (as the next run would) and returns the
// snapshot's id.
func (fx *cacheFixture) commit(t *testing.T, d repo.Disk) repo.ID {
	t.Helper()
	id, err := fx.r.SaveSnapshot(context.Background(), &repo.Snapshot{Time: time.Now(), Host: "test",
		Kind: repo.SnapshotImage, Source: fx.src, Disks: []repo.Disk{d}})
	if err != nil {
		t.Fatal(err)
	}
	fx.r.Close()
	fx.r = memblobs.OpenRepo(t, fx.dir)
	return id
}

// forgetAndPrune removes snapshot id, prunes and reopens the repository: the blobs only it used
// are gone, while the cache file still names them.
func (fx *cacheFixture) forgetAndPrune(t *testing.T, id repo.ID) {
	t.Helper()
	ctx := context.Background()
	if err := fx.r.RemoveSnapshot(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.r.Prune(ctx, repo.PruneOptions{}); err != nil {
		t.Fatal(err)
	}
	fx.r.Close()
	fx.r = memblobs.OpenRepo(t, fx.dir)
}

// restoreSame restores d from the repository and compares it with the source image.
func (fx *cacheFixture) restoreSame(t *testing.T, d repo.Disk) {
	t.Helper()
	rep, err := fx.r.Check(context.Background(), repo.CheckOptions{ReadData: true})
	if err != nil || !rep.OK() {
		t.Fatalf("check: %v %+v", err, rep)
	}
	dst := tempPath(t, "restored.img")
	if err := Restore(context.Background(), fx.r, d, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if apparent(t, dst) != apparent(t, fx.src) || disktest.FileSum(t, dst) != disktest.FileSum(t, fx.src) {
		t.Fatal("restored image differs from the source")
	}
}

func TestCacheSkipsHashOfUnchangedBlocks(t *testing.T) {
	fx := newCacheFixture(t)
	first := backupCounted(t, fx.r, fx.src, fx.opts())
	if first.st.BlocksCached != 0 || first.hashed != int64(fx.data) {
		t.Fatalf("first run: %d cached, %d hashed; want 0 and %d", first.st.BlocksCached, first.hashed, fx.data)
	}
	if fi, err := os.Stat(fx.cache); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache file after the first run: %v %v (want mode 0600)", fi, err)
	}
	fx.commit(t, first.d)

	second := backupCounted(t, fx.r, fx.src, fx.opts())
	if second.st.BlocksCached != fx.data || second.hashed != 0 || second.saves != 0 {
		t.Fatalf("unchanged image: %d cached, %d hashed, %d saved; want %d, 0, 0",
			second.st.BlocksCached, second.hashed, second.saves, fx.data)
	}
	if second.st.BlobsNew != 0 || second.st.BlobsReused != first.st.BlobsNew+first.st.BlobsReused {
		t.Fatalf("stats %+v after %+v: cached blocks must count as reused", second.st, first.st)
	}
	if !slices.Equal(second.d.Map, first.d.Map) || second.d.Allocated != first.d.Allocated {
		t.Fatal("the cached run produced another block map")
	}
	fx.restoreSame(t, second.d)
}

func TestCacheDetectsChangedBlocks(t *testing.T) {
	fx := newCacheFixture(t)
	first := backupCounted(t, fx.r, fx.src, fx.opts())
	fx.commit(t, first.d)

	// Change one data block in its middle (block 7 holds data from 100 KiB on) and write a
	// block that was a hole.
	f, err := os.OpenFile(fx.src, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []region{{7*testBlock + 100, memblobs.RandBytes(50, 64)}, {200 * testBlock, memblobs.RandBytes(51, testBlock)}} {
		if _, err := f.WriteAt(w.data, w.off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()

	second := backupCounted(t, fx.r, fx.src, fx.opts())
	if second.st.BlocksCached != fx.data-1 || second.hashed != 2 || second.saves != 2 || second.st.BlobsNew < 2 {
		t.Fatalf("two changed blocks: %d cached, %d hashed, %d saved, stats %+v; want %d, 2, 2",
			second.st.BlocksCached, second.hashed, second.saves, second.st, fx.data-1)
	}
	fx.commit(t, second.d)
	fx.restoreSame(t, second.d)

	// The new cache knows the new blocks.
	third := backupCounted(t, fx.r, fx.src, fx.opts())
	if third.st.BlocksCached != fx.data+1 || third.hashed != 0 {
		t.Fatalf("after the change: %d cached, %d hashed; want %d, 0", third.st.BlocksCached, third.hashed, fx.data+1)
	}
}

// A prune that removed the blobs the cache names (the snapshot was forgotten) must not leave a
// block map naming blobs the repository lacks.
func TestCacheBlobLostToPruneIsSavedAgain(t *testing.T) {
	fx := newCacheFixture(t)
	first := backupCounted(t, fx.r, fx.src, fx.opts())
	id := fx.commit(t, first.d)
	fx.forgetAndPrune(t, id)
	if n := fx.r.BlobCount(); n != 0 {
		t.Fatalf("%d blobs left after the prune; the test needs them gone", n)
	}

	// One worker, so blocks go in disk order: block 301 repeats block 300, whose blob this run
	// has just queued again, so the cache may vouch for 301 and for nothing else.
	o := fx.opts()
	o.Workers = 1
	second := backupCounted(t, fx.r, fx.src, o)
	if second.st.BlocksCached != 1 || second.hashed != int64(fx.data-1) || second.saves != int64(fx.data-1) {
		t.Fatalf("after prune: %d cached, %d hashed, %d saved; want 1, %d, %d",
			second.st.BlocksCached, second.hashed, second.saves, fx.data-1, fx.data-1)
	}
	fx.commit(t, second.d)
	fx.restoreSame(t, second.d)
}

// The entry count is in the header; this reads it for tests that damage files at chosen places.
func cacheEntries(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return int(binary.LittleEndian.Uint64(b[40:]))
}

func TestCacheIgnoresUnusableFiles(t *testing.T) {
	rewrite := func(t *testing.T, path string, edit func([]byte) []byte) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, edit(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// resealed fixes the header check after a deliberate change, so only the change is wrong.
	resealed := func(b []byte) []byte {
		binary.LittleEndian.PutUint64(b[112:], xxh3.Hash(b[:112]))
		return b
	}
	cases := []struct {
		name string
		// damage changes the cache file of fx; it may change opts (another repository id)
		damage func(t *testing.T, fx *cacheFixture, o *Options)
		// cached is the number of blocks the damaged file may still vouch for
		cached func(fx *cacheFixture) int
	}{
		{name: "missing", damage: func(t *testing.T, fx *cacheFixture, _ *Options) { os.Remove(fx.cache) }},
		{name: "empty", damage: func(t *testing.T, fx *cacheFixture, _ *Options) {
			rewrite(t, fx.cache, func([]byte) []byte { return nil })
		}},
		{name: "garbage", damage: func(t *testing.T, fx *cacheFixture, _ *Options) {
			rewrite(t, fx.cache, func(b []byte) []byte { return memblobs.RandBytes(9, len(b)) })
		}},
		{name: "truncated by a byte", damage: func(t *testing.T, fx *cacheFixture, _ *Options) {
			rewrite(t, fx.cache, func(b []byte) []byte { return b[:len(b)-1] })
		}},
		{name: "truncated by an entry", damage: func(t *testing.T, fx *cacheFixture, _ *Options) {
			rewrite(t, fx.cache, func(b []byte) []byte { return b[:len(b)-fpEntrySize] })
		}},
		{name: "header bit flipped", damage: func(t *testing.T, fx *cacheFixture, _ *Options) {
			rewrite(t, fx.cache, func(b []byte) []byte { b[30] ^= 1; return b })
		}},
		{name: "newer version", damage: func(t *testing.T, fx *cacheFixture, _ *Options) {
			rewrite(t, fx.cache, func(b []byte) []byte { binary.LittleEndian.PutUint32(b[16:], fpVersion+1); return resealed(b) })
		}},
		{name: "another repository", damage: func(t *testing.T, fx *cacheFixture, o *Options) {
			// The same file, read for a repository with another id (as a copied state folder
			// would be).
			o.RepoID = "0123456789abcdef0123456789abcdef"
		}},
		{name: "another block size", damage: func(t *testing.T, fx *cacheFixture, _ *Options) {
			rewrite(t, fx.cache, func(b []byte) []byte { binary.LittleEndian.PutUint32(b[20:], 2*testBlock); return resealed(b) })
		}},
		{name: "entry bit flipped", damage: func(t *testing.T, fx *cacheFixture, _ *Options) {
			// Entry 3's blob id: entries 0-2 are still checked and used, nothing after.
			rewrite(t, fx.cache, func(b []byte) []byte { b[fpHeaderSize+3*fpEntrySize+30] ^= 0x40; return b })
		}, cached: func(*cacheFixture) int { return 3 }},
		{name: "entries out of order", damage: func(t *testing.T, fx *cacheFixture, _ *Options) {
			rewrite(t, fx.cache, func(b []byte) []byte {
				e := b[fpHeaderSize+2*fpEntrySize : fpHeaderSize+4*fpEntrySize]
				swapped := append(slices.Clone(e[fpEntrySize:]), e[:fpEntrySize]...)
				copy(e, swapped)
				return b
			})
		}, cached: func(*cacheFixture) int { return 3 }}, // 0, 1 and the one moved ahead; then the order breaks
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fx := newCacheFixture(t)
			first := backupCounted(t, fx.r, fx.src, fx.opts())
			fx.commit(t, first.d)
			if n := cacheEntries(t, fx.cache); n != fx.data || n < 5 {
				t.Fatalf("cache holds %d entries, want %d (at least 5 for the damage cases)", n, fx.data)
			}
			o := fx.opts()
			c.damage(t, fx, &o)
			want := 0
			if c.cached != nil {
				want = c.cached(fx)
			}
			second := backupCounted(t, fx.r, fx.src, o)
			if second.st.BlocksCached != want || second.hashed != int64(fx.data-want) {
				t.Fatalf("%d cached, %d hashed; want %d, %d", second.st.BlocksCached, second.hashed, want, fx.data-want)
			}
			if !slices.Equal(second.d.Map, first.d.Map) {
				t.Fatal("block map differs")
			}
			// The damaged file was replaced by a good one.
			third := backupCounted(t, fx.r, fx.src, o)
			if third.st.BlocksCached != fx.data || third.hashed != 0 {
				t.Fatalf("after the rewrite: %d cached, %d hashed; want %d, 0", third.st.BlocksCached, third.hashed, fx.data)
			}
		})
	}
}

// A repository of another block size: the cache file's block size no longer matches.
func TestCacheOtherBlockSizeIgnored(t *testing.T) {
	fx := newCacheFixture(t)
	fx.commit(t, backupCounted(t, fx.r, fx.src, fx.opts()).d)
	other := memblobs.New(2 * testBlock)
	run := backupCounted(t, other, fx.src, fx.opts())
	if run.st.BlocksCached != 0 || run.saves == 0 {
		t.Fatalf("other block size: %d cached, %d saved", run.st.BlocksCached, run.saves)
	}
}

// cancelAfter cancels a backup once it has reported some bytes: midway through the disk.
type cancelAfter struct {
	n      atomic.Int64
	limit  int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Start(string, int64) {}
func (c *cancelAfter) File(int)            {}
func (c *cancelAfter) Done()               {}
func (c *cancelAfter) Add(b int64) {
	if c.n.Add(b) >= c.limit {
		c.cancel()
	}
}

func TestCacheFailedBackupKeepsOldCache(t *testing.T) {
	fx := newCacheFixture(t)
	fx.commit(t, backupCounted(t, fx.r, fx.src, fx.opts()).d)
	before, err := os.ReadFile(fx.cache)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := fx.opts()
	o.Rehash = true // would write a file with a new seed if it got to commit
	o.Workers = 1
	o.Progress = &cancelAfter{limit: 5 * testBlock, cancel: cancel}
	if _, _, err := Backup(ctx, fx.r, fx.src, o); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled backup returned %v", err)
	}
	after, err := os.ReadFile(fx.cache)
	if err != nil || !slices.Equal(after, before) {
		t.Fatalf("the failed backup changed the cache file (%v)", err)
	}
	ents, err := os.ReadDir(filepath.Dir(fx.cache))
	if err != nil || len(ents) != 1 {
		t.Fatalf("cache folder holds %d files, want the cache alone (temp file left?) %v", len(ents), err)
	}
	run := backupCounted(t, fx.r, fx.src, fx.opts())
	if run.st.BlocksCached != fx.data {
		t.Fatalf("old cache after the failed run: %d cached, want %d", run.st.BlocksCached, fx.data)
	}
}

func TestCacheRehashHashesEveryBlock(t *testing.T) {
	fx := newCacheFixture(t)
	fx.commit(t, backupCounted(t, fx.r, fx.src, fx.opts()).d)
	seed := func() uint64 {
		b, err := os.ReadFile(fx.cache)
		if err != nil {
			t.Fatal(err)
		}
		return binary.LittleEndian.Uint64(b[24:])
	}
	oldSeed := seed()
	o := fx.opts()
	o.Rehash = true
	run := backupCounted(t, fx.r, fx.src, o)
	if run.st.BlocksCached != 0 || run.hashed != int64(fx.data) {
		t.Fatalf("--rehash: %d cached, %d hashed; want 0, %d", run.st.BlocksCached, run.hashed, fx.data)
	}
	if seed() == oldSeed {
		t.Fatal("--rehash kept the old seed")
	}
	// A normal run keeps the seed of the file it reads.
	newSeed := seed()
	run = backupCounted(t, fx.r, fx.src, fx.opts())
	if run.st.BlocksCached != fx.data || seed() != newSeed {
		t.Fatalf("after --rehash: %d cached (want %d), seed kept %v", run.st.BlocksCached, fx.data, seed() == newSeed)
	}
}

// A disk that grew: its old short last block is now a full block and must not match its old
// entry by length; the restore is the grown image.
func TestCacheGrownDisk(t *testing.T) {
	fx := newCacheFixture(t)
	fx.commit(t, backupCounted(t, fx.r, fx.src, fx.opts()).d)
	if err := os.Truncate(fx.src, fx.size+testBlock); err != nil {
		t.Fatal(err)
	}
	run := backupCounted(t, fx.r, fx.src, fx.opts())
	// The old last block (1000 bytes, data) is now a full block: hashed again.
	if run.st.BlocksCached != fx.data-1 || run.hashed != 1 {
		t.Fatalf("grown disk: %d cached, %d hashed; want %d, 1", run.st.BlocksCached, run.hashed, fx.data-1)
	}
	fx.commit(t, run.d)
	fx.restoreSame(t, run.d)
}

// Without Cache (the tape path, or a caller that has no state folder) nothing is written and
// every block is hashed.
func TestNoCacheWithoutPath(t *testing.T) {
	fx := newCacheFixture(t)
	for range 2 {
		run := backupCounted(t, fx.r, fx.src, Options{})
		if run.st.BlocksCached != 0 || run.hashed != int64(fx.data) {
			t.Fatalf("no cache: %d cached, %d hashed", run.st.BlocksCached, run.hashed)
		}
	}
	if _, err := os.Stat(filepath.Dir(fx.cache)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("cache folder created without a cache: %v", err)
	}
}

func TestRemoveStaleCaches(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	files := map[string]time.Duration{ // name: age
		"fresh":                 time.Hour,
		"89days":                89 * 24 * time.Hour,
		"91days":                91 * 24 * time.Hour,
		"x" + fpTempInfix + "1": 2 * time.Hour,
		"y" + fpTempInfix + "2": 25 * time.Hour,
	}
	for name, age := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := RemoveStaleCaches(dir, CacheMaxAge, now)
	if err != nil || n != 2 {
		t.Fatalf("removed %d (%v), want 2", n, err)
	}
	var left []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		left = append(left, e.Name())
	}
	want := []string{"89days", "fresh", "x" + fpTempInfix + "1"}
	if !slices.Equal(left, want) {
		t.Fatalf("left %v, want %v", left, want)
	}
	if n, err := RemoveStaleCaches(filepath.Join(dir, "none"), CacheMaxAge, now); n != 0 || err != nil {
		t.Fatalf("missing folder: %d %v", n, err)
	}
}

// The reader holds one buffer whatever the file's size: a 2 TiB disk's cache is read, not loaded.
func TestFingerprintReaderStreams(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c")
	const n = 200_000 // 12.8 MB of entries
	w, err := createFingerprints(path, fpHeader{blockSize: 4096, seed: 1, diskSize: 4096 * 2 * n, repoID: "r"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range int64(n) {
		w.add(fingerprint{index: 2 * i, fast: xxh3.Uint128{Hi: uint64(i), Lo: 1}})
	}
	if err := w.commit(); err != nil {
		t.Fatal(err)
	}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	r, err := openFingerprints(path, "r", 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	hits := 0
	for i := range int64(2 * n) {
		if e, ok := r.lookup(i, 4096); ok {
			if e.index != i || e.fast.Hi != uint64(i/2) {
				t.Fatalf("block %d: entry %+v", i, e)
			}
			hits++
		}
	}
	runtime.ReadMemStats(&ms1)
	if hits != n {
		t.Fatalf("%d hits, want %d", hits, n)
	}
	if grew := int64(ms1.TotalAlloc - ms0.TotalAlloc); grew > 1<<20 {
		t.Fatalf("reading the cache allocated %d bytes", grew)
	}
}
