package disk

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/zeebo/xxh3"
	"golang.org/x/sys/unix"

	"github.com/snapferry/snapferry/images/pipeline"
	"github.com/snapferry/snapferry/images/progress"
	"github.com/snapferry/snapferry/images/repo"
)

// Options tune a backup. The zero value backs up a raw image with the default workers.
type Options struct {
	Name       string // Disk.Name; default: the file's base name
	Device     string // Disk.Device, e.g. "scsi0:0"
	Format     string // Disk.Format; default "raw"
	Descriptor string // Disk.Descriptor (VMDK descriptor text)
	Workers    int    // hash+store goroutines; default 2 per CPU (see defaultWorkers)
	Progress   progress.Reporter

	// Cache is the block fingerprint cache file of this source in this repository (CachePath,
	// docs/block-cache.md); empty: no cache, every block is hashed with BLAKE3. A missing or
	// unusable file is ignored and replaced; the new file replaces the old one only when the
	// backup succeeds.
	Cache string
	// RepoID is the repository's id (repo.Config().ID), required with Cache: blob ids are keyed
	// in an encrypted repository, so a cache is valid for one repository only.
	RepoID string
	// Rehash ignores the old cache: every block is hashed with BLAKE3 again, and the cache is
	// rewritten with a new seed. It also stores no patches: every changed block is saved whole
	// (and becomes the base of later patches).
	Rehash bool
	// Warn hears about things the backup stored but the user should know: an image that grew
	// or changed while it was read (stored as it was read; see grownWarning). nil: dropped.
	Warn func(msg string)
	// Prehash is this image's cache pass started before the repository was open
	// (StartPrehash); Backup stops it and skips the blocks it found unchanged, when its marks
	// hold for this run (same cache file and seed, same image). nil: none.
	Prehash *Prehash
}

// Backup backs up the image file at path. See BackupFile.
func Backup(ctx context.Context, bs repo.BlobStore, path string, opts Options) (repo.Disk, repo.Stats, error) {
	f, err := os.Open(path)
	if err != nil {
		return repo.Disk{}, repo.Stats{}, fmt.Errorf("open disk image: %w", err)
	}
	defer f.Close()
	return BackupFile(ctx, bs, f, opts)
}

// BackupFile stores the contents of f (a regular file or a block device) as blocks of
// bs.BlockSize() and returns the Disk to put in a snapshot, with its block-map chunks already
// saved. The file must not change while it is read (back up a frozen snapshot base).
// Stats count bytes read and new/reused blobs (data blocks and map chunks).
func BackupFile(ctx context.Context, bs repo.BlobStore, f *os.File, opts Options) (repo.Disk, repo.Stats, error) {
	defer opts.Prehash.Stop() // on every return; stopping twice is fine
	blockSize := bs.BlockSize()
	if blockSize <= 0 {
		return repo.Disk{}, repo.Stats{}, fmt.Errorf("back up %s: repository block size %d is invalid", f.Name(), blockSize)
	}
	size, err := fileSize(f)
	if err != nil {
		return repo.Disk{}, repo.Stats{}, fmt.Errorf("back up disk: %w", err)
	}
	before, _ := f.Stat()
	d := repo.Disk{
		Name:       opts.Name,
		Path:       f.Name(),
		Device:     opts.Device,
		Format:     opts.Format,
		Descriptor: opts.Descriptor,
		Size:       size,
		BlockSize:  blockSize,
	}
	if d.Name == "" {
		d.Name = filepath.Base(f.Name())
	}
	recordMeta(f, &d)
	if d.Format == "" {
		d.Format = "raw"
	}
	// Reading ahead pays off for the long sequential runs of a disk image; a failure only
	// costs speed (devices, VMFS), so it is not an error.
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_SEQUENTIAL)

	m := &extentMapper{f: f, size: size}
	b := &diskBackup{
		bs:        bs,
		src:       f,
		extents:   m.next,
		blockSize: blockSize,
		size:      size,
		nblocks:   (size + int64(blockSize) - 1) / int64(blockSize),
		progress:  progress.OrNop(opts.Progress),
		zero:      make([]byte, blockSize),
		subSize:   subBlockSize(blockSize),
	}
	if ps, ok := bs.(repo.PatchStore); ok {
		b.ps = ps
		b.patch = ps.PatchesEnabled() && !opts.Rehash
	}
	b.openCache(opts)
	if b.pre = prehashFor(opts.Prehash, f, opts, b.old, blockSize, size); b.pre != nil {
		before = b.pre.before // the read began with the pass
	}
	b.progress.Start(d.Name, size)
	defer b.progress.Done()
	err = b.run(ctx, defaultWorkers(opts.Workers))
	b.closeCache(err == nil)
	if err != nil {
		return repo.Disk{}, repo.Stats{}, fmt.Errorf("back up %s: %w", f.Name(), err)
	}
	d.Map = b.chunks
	d.Allocated = b.allocated
	if w := changedWhileRead(f, before, size); w != "" && opts.Warn != nil {
		opts.Warn(w)
	}
	st := repo.Stats{
		BytesRead:     b.bytesRead.Load(),
		BytesAdded:    b.bytesAdded.Load(),
		BlobsNew:      int(b.blobsNew.Load()),
		BlobsReused:   int(b.blobsReused.Load()),
		BlocksCached:  int(b.blocksCached.Load()),
		BlocksPatched: int(b.blocksPatched.Load()),
	}
	return d, st, nil
}

// defaultWorkers is n when positive, else 2 per CPU: SaveBlob uploads the pack it fills and
// LoadBlob may fetch over SSH, both in the caller's goroutine, and the other workers should
// keep the cores busy meanwhile.
func defaultWorkers(n int) int {
	if n > 0 {
		return n
	}
	return 2 * pipeline.Workers(0)
}

// diskBackup is the state of one BackupFile run.
type diskBackup struct {
	bs repo.BlobStore
	// src is read at the ranges extents finds (extentMapper.next for a file; a source's own
	// map for BackupSource); blocks outside them are holes, or the parent's (backup_source.go).
	src       io.ReaderAt
	extents   func(off int64) (start, end int64, ok bool, err error)
	parent    *parentMap
	blockSize int
	size      int64
	nblocks   int64
	progress  progress.Reporter
	zero      []byte // read-only, compared against to find all-zero blocks

	// The fingerprint cache (fingerprint_cache.go): old is read by the reader goroutine, out
	// written by the assembler, both in disk order. fast is set when either exists: the workers
	// then compute each block's fast hash under seed.
	old  *fpReader
	out  *fpWriter
	seed uint64
	fast bool
	// pre marks blocks a pass before the repository was open found unchanged (prehash.go);
	// read sends them unread.
	pre *Prehash

	// Patches (patch.go): ps is bs when it is a repo.PatchStore; patch is set when this run may
	// store changed blocks as patches (PatchesEnabled, not Rehash, and a cache to learn the
	// bases from). subSize is the sub-block size.
	ps      repo.PatchStore
	patch   bool
	subSize int
	// partial: BackupSource reads only the ranges of blocks they cover in part (readPartial);
	// scratch holds buffers for the parent blocks the workers load to complete them.
	partial bool
	scratch sync.Pool

	bytesRead, bytesAdded, blobsNew, blobsReused, blocksCached, blocksPatched atomic.Int64

	// Owned by the assembler goroutine.
	chunks    []repo.ID
	allocated int64
}

// blockJob is one read block on its way from the reader to a worker.
type blockJob struct {
	seq    uint64
	index  int64
	buf    []byte      // from the pool; the worker returns it
	cached fingerprint // the old cache's entry for this block, when hasOld
	hasOld bool
	// carried is the parent's blob id of a block that is not read (buf nil): BackupSource
	// with a parent, for blocks outside the ranges it reads.
	carried repo.ID
	// fromParent: only pieces (offsets in the block) were read (readPartial); the worker
	// completes the rest from the parent's block parentID (zeros when it is a hole). patchBase
	// and changed: the parent's whole blob the block may be a patch of, and the sub-blocks read.
	fromParent bool
	parentID   repo.ID
	pieces     [][2]int
	patchBase  repo.ID
	changed    []int
	// prehashed: not read (buf nil); the prehash pass found it unchanged against cached.
	prehashed bool
}

// seqResult carries a blockResult with the reader's sequence number for reordering.
type seqResult struct {
	seq uint64
	blockResult
}

// blockResult is a stored block on its way to the assembler.
type blockResult struct {
	index int64
	n     int
	id    repo.ID      // zero for an all-zero block
	fast  xxh3.Uint128 // the block's fast hash when diskBackup.fast
	// The block's patch base for the new cache entry, when diskBackup.fast (zero: none).
	base     repo.ID
	baseSubs subHashes
}

func (b *diskBackup) run(ctx context.Context, nworkers int) error {
	pool := pipeline.NewBufferPool(2*nworkers+2, b.blockSize)
	jobs := make(chan blockJob, nworkers)
	results := make(chan seqResult, nworkers)
	g := pipeline.NewGroup(ctx)
	read := b.read
	if b.partial {
		read = b.readPartial
	}
	g.Go(func(ctx context.Context) error {
		defer close(jobs)
		return read(ctx, pool, jobs)
	})
	g.GoWorkers(nworkers, func(ctx context.Context) error {
		for j := range jobs {
			r, err := b.store(ctx, j)
			if j.buf != nil { // carried blocks have none
				pool.Put(j.buf)
			}
			if err != nil {
				return err
			}
			if err := pipeline.Send(ctx, results, seqResult{j.seq, r}); err != nil {
				return err
			}
		}
		return nil
	}, func() { close(results) })
	g.Go(func(ctx context.Context) error {
		asm := newMapAssembler(b)
		ord := pipeline.NewReorder[blockResult]()
		for r := range results {
			if err := ord.Push(r.seq, r.blockResult, func(r blockResult) error { return asm.add(ctx, r) }); err != nil {
				return err
			}
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return asm.finish(ctx)
	})
	return g.Wait()
}

// read walks the allocated extents and sends every block that holds data, in order. Blocks
// wholly inside holes are never read.
func (b *diskBackup) read(ctx context.Context, pool *pipeline.BufferPool, jobs chan<- blockJob) error {
	bsz := int64(b.blockSize)
	var seq uint64
	next := int64(0) // first block not yet sent or skipped
	err := b.eachExtent(func(start, end int64) (int64, error) {
		first, last := max(start/bsz, next), (end-1)/bsz
		if err := b.carry(ctx, jobs, &seq, next, first); err != nil {
			return 0, err
		}
		b.progress.Add((first - next) * bsz) // skipped holes
		for i := first; i <= last; i++ {
			if b.pre.Unchanged(i) {
				n := int(min(bsz, b.size-i*bsz))
				if c, ok := b.old.lookup(i, n); ok {
					b.bytesRead.Add(int64(n)) // read by the pass, in this run
					if err := pipeline.Send(ctx, jobs, blockJob{seq: seq, index: i, cached: c, hasOld: true, prehashed: true}); err != nil {
						return 0, err
					}
					seq++
					continue
				}
			}
			buf, err := pool.Get(ctx)
			if err != nil {
				return 0, err
			}
			n := int(min(bsz, b.size-i*bsz))
			if m, err := b.src.ReadAt(buf[:n], i*bsz); m < n {
				pool.Put(buf)
				if err == io.EOF {
					err = fmt.Errorf("file ended at %d bytes, %d expected: it shrank while being read", i*bsz+int64(m), b.size)
				}
				return 0, fmt.Errorf("read block %d: %w", i, err)
			}
			b.bytesRead.Add(int64(n))
			j := blockJob{seq: seq, index: i, buf: buf[:n]}
			j.cached, j.hasOld = b.old.lookup(i, n)
			if err := pipeline.Send(ctx, jobs, j); err != nil {
				pool.Put(buf)
				return 0, err
			}
			seq++
		}
		next = last + 1
		return next * bsz, nil
	})
	if err != nil {
		return err
	}
	return b.carryRest(ctx, jobs, &seq, next)
}

// store hashes one block and saves it unless it is all zeros, or unless the fingerprint cache
// vouches for it: the same fast hash as last time, and the repository still has the blob (a
// prune may have removed it since). A changed block is saved as a patch of its base when
// savePatch finds that worth it, else whole.
func (b *diskBackup) store(ctx context.Context, j blockJob) (blockResult, error) {
	if j.prehashed {
		r, buf, err := b.prehashedBlock(j)
		if err != nil || buf == nil {
			return r, err
		}
		j.buf = buf // its blob is gone: stored as a changed block
	}
	if j.buf == nil { // a block not read: the parent's blob (carry)
		return blockResult{index: j.index, n: blockLen(repo.Disk{Size: b.size, BlockSize: b.blockSize}, j.index), id: j.carried}, nil
	}
	if j.fromParent {
		if err := b.completeFromParent(ctx, j); err != nil {
			return blockResult{}, err
		}
	}
	r := blockResult{index: j.index, n: len(j.buf)}
	defer b.progress.Add(int64(len(j.buf)))
	if bytes.Equal(j.buf, b.zero[:len(j.buf)]) {
		return r, nil
	}
	if b.fast {
		r.fast = fastHash(j.buf, b.seed)
		if j.hasOld && r.fast == j.cached.fast && b.bs.HasBlob(repo.DataBlob, j.cached.id) {
			r.id, r.base, r.baseSubs = j.cached.id, j.cached.base, j.cached.baseSubs
			b.blocksCached.Add(1)
			b.count(false, len(j.buf))
			return r, nil
		}
	}
	r.id = b.bs.BlobID(j.buf)
	if done, err := b.saveSourcePatch(ctx, j, r); done || err != nil {
		return r, err
	}
	var subs subHashes
	if b.fast {
		subs = hashSubBlocks(j.buf, b.subSize, b.seed)
		if done, err := b.savePatch(ctx, j, &r, &subs); done || err != nil {
			return r, err
		}
	}
	added, err := b.bs.SaveBlob(ctx, repo.DataBlob, r.id, j.buf)
	if err != nil {
		return r, fmt.Errorf("save block %d: %w", j.index, err)
	}
	b.count(added, len(j.buf))
	switch {
	case !b.fast:
	case added || b.ps == nil || b.ps.IsFullBlob(r.id):
		// Stored whole: the block is the base of its own later patches.
		r.base, r.baseSubs = r.id, subs
	case j.hasOld:
		// Its id was stored before as a patch (another block's, or this one's in a run without
		// a cache): keep the base the block had, if any.
		r.base, r.baseSubs = j.cached.base, j.cached.baseSubs
	}
	return r, nil
}

// savePatch stores the changed block of j as a patch of its base when patches are on, its cache
// entry names a base that is still a whole blob, and at least one and at most half of its
// sub-blocks (hashes subs) differ from the base's. It reports whether it stored the block; the
// new cache entry then keeps the same base, so a block is always patched against its last whole
// blob, never against a patch.
func (b *diskBackup) savePatch(ctx context.Context, j blockJob, r *blockResult, subs *subHashes) (bool, error) {
	if !b.patch || !j.hasOld || j.cached.base.IsZero() || !b.ps.IsFullBlob(j.cached.base) {
		return false, nil
	}
	n := len(j.buf)
	changed := changedSubBlocks(subs, &j.cached.baseSubs, n, b.subSize)
	if !worthPatching(changed, n, b.subSize) {
		return false, nil
	}
	if err := b.storePatch(ctx, j, r.id, j.cached.base, changed); err != nil {
		return true, err
	}
	r.base, r.baseSubs = j.cached.base, j.cached.baseSubs
	return true, nil
}

// storePatch saves block j (id) as a patch of base over the changed sub-blocks and counts it:
// the plaintext this run added is what the patch keeps of the block.
func (b *diskBackup) storePatch(ctx context.Context, j blockJob, id, base repo.ID, changed []int) error {
	added, err := b.ps.SavePatch(ctx, id, base, j.buf, b.subSize, changed)
	if err != nil {
		return fmt.Errorf("save block %d as a patch: %w", j.index, err)
	}
	if added {
		b.blocksPatched.Add(1)
		b.count(true, min(len(j.buf), len(changed)*b.subSize))
	} else {
		b.count(false, len(j.buf))
	}
	return nil
}

func (b *diskBackup) count(added bool, n int) {
	if added {
		b.blobsNew.Add(1)
		b.bytesAdded.Add(int64(n))
	} else {
		b.blobsReused.Add(1)
	}
}

// mapAssembler builds block-map chunks in disk order from blocks arriving in disk order, saving
// each chunk as soon as the first block past it arrives. It holds one chunk's ids at a time.
type mapAssembler struct {
	b   *diskBackup
	cur int64 // index of the chunk being filled
	ids []repo.ID
}

func newMapAssembler(b *diskBackup) *mapAssembler {
	return &mapAssembler{b: b, ids: make([]repo.ID, repo.MapChunkBlocks)}
}

func (a *mapAssembler) add(ctx context.Context, r blockResult) error {
	c := r.index / repo.MapChunkBlocks
	for a.cur < c {
		if err := a.flush(ctx); err != nil {
			return err
		}
	}
	a.ids[r.index%repo.MapChunkBlocks] = r.id
	if !r.id.IsZero() {
		a.b.allocated += int64(r.n)
		if a.b.fast {
			a.b.out.add(fingerprint{index: r.index, fast: r.fast, id: r.id, base: r.base, baseSubs: r.baseSubs})
		}
	}
	return nil
}

// finish saves the remaining chunks, including trailing all-hole ones.
func (a *mapAssembler) finish(ctx context.Context) error {
	nchunks := (a.b.nblocks + repo.MapChunkBlocks - 1) / repo.MapChunkBlocks
	for a.cur < nchunks {
		if err := a.flush(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (a *mapAssembler) flush(ctx context.Context) error {
	first := a.cur * repo.MapChunkBlocks
	n := min(repo.MapChunkBlocks, a.b.nblocks-first)
	chunk := repo.BlockMapChunk{First: uint64(first), IDs: a.ids[:n]}
	data, err := chunk.MarshalBinary()
	if err != nil {
		return fmt.Errorf("encode block map chunk %d: %w", a.cur, err)
	}
	id := a.b.bs.BlobID(data)
	added, err := a.b.bs.SaveBlob(ctx, repo.TreeBlob, id, data)
	if err != nil {
		return fmt.Errorf("save block map chunk %d: %w", a.cur, err)
	}
	a.b.count(added, len(data))
	a.b.chunks = append(a.b.chunks, id)
	clear(a.ids)
	a.cur++
	return nil
}
