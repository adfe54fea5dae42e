package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/snapferry/snapferry/cron/clock"
	"github.com/snapferry/snapferry/images/store"
)

// Fault-injection points passed to Options.Hook, in the order a backup reaches them.
const (
	HookPackUpload    = "pack-upload"    // a finished pack is about to be uploaded
	HookPackUploaded  = "pack-uploaded"  // the pack is stored, no index names it yet
	HookIndexSave     = "index-save"     // an index file is about to be written
	HookIndexSaved    = "index-saved"    // the index file is stored
	HookSnapshotSave  = "snapshot-save"  // packs and index are stored, the snapshot is not
	HookSnapshotSaved = "snapshot-saved" // the snapshot file is stored
	HookPruneIndex    = "prune-index"    // prune wrote its new index, old files still present
	HookPruneDelete   = "prune-delete"   // prune removed old index files, is about to delete packs
	HookLockRefreshed = "lock-refreshed" // a lock file was rewritten
)

// maxCodecs bounds concurrent zstd encoders and decoders (memory, see Open).
const maxCodecs = 4

// DefaultPackBlobs and DefaultIndexEveryBlobs bound the blobs held in the map index (see
// Options.PackBlobs): with up to 4 open packs, at most ~32k blobs (~3.5 MiB) however many files a
// tree has. Image blocks (1 MiB) fill a pack by bytes long before either count.
const (
	DefaultPackBlobs       = 4096
	DefaultIndexEveryBlobs = 16384
)

// Options tune an open repository. Zero values take the defaults.
type Options struct {
	// TempDir is where packs are built before upload. It must be on disk: on ESXi /tmp is a small
	// ramdisk. Required for writing; reading works without.
	TempDir string
	// PackSize overrides the config's target pack size (tests use small packs).
	PackSize int64
	// Packers is how many data packs are filled at once (default: GOMAXPROCS, at most 4); tree
	// blobs fill one pack of their own besides (pack_slots.go).
	Packers int
	// IndexEvery writes an index file after this many uploaded packs (default 16), so a long
	// backup that dies keeps most of its work.
	IndexEvery int
	// PackBlobs closes a pack once it holds this many blobs, however small (default
	// DefaultPackBlobs), and IndexEveryBlobs writes an index file once uploaded packs not yet
	// named by one hold this many blobs (default DefaultIndexEveryBlobs). Until an index file
	// names them, blobs sit in a map at ~100 bytes each (plus their pack's entry list); after,
	// in sorted slices at 52. Counting bytes alone let a tree of 500k small files, which fits
	// one pack, keep all of them in the map for the whole run (229 MiB RSS, measured).
	PackBlobs, IndexEveryBlobs int
	// Compression is what this run does with new blobs (empty: the repository's default, see
	// Config.Compression). Readers decode every codec whatever this says.
	Compression Compression
	// Hook is called at the Hook* points; tests use it to kill the process there.
	Hook func(point string)
	// CloseBackend makes Close close the store too: the caller handed it over (an ssh:// store's
	// far serves and read lanes then end cleanly when the command is done with the repository).
	CloseBackend bool
	// Clock computes ages (lock staleness, retention, prune grace); Hostname names this host in
	// lock files (defaults: the system clock and hostname).
	Clock    clock.Clock
	Hostname string
	// LockRefresh is how often held locks are rewritten (default 5 min); LockStale is when an
	// unrefreshed lock is considered abandoned (default 30 min).
	LockRefresh time.Duration
	LockStale   time.Duration
	// Password opens an encrypted repository (one of its key files). It must be empty for an
	// unencrypted one: a password given for a repository whose config says "none" means the
	// config may have been replaced to make this client write plaintext, so Open refuses.
	Password []byte
}

// RunStats count what this Repository value wrote.
type RunStats struct {
	BlobsNew      int64
	BlobsReused   int64
	BytesAdded    int64 // plaintext bytes of new blobs
	BytesStored   int64 // bytes of uploaded packs
	PacksUploaded int64
	IndexFiles    int64
	// BlobsPatched counts new blobs stored as patches (also in BlobsNew); BytesPatched is their
	// plaintext (also in BytesAdded) and BytesPatchedWhole the blocks they stand for.
	BlobsPatched      int64
	BytesPatched      int64
	BytesPatchedWhole int64
}

// Repository is an open repository. It implements BlobStore; all methods are safe for
// concurrent use.
type Repository struct {
	be   store.Backend
	cfg  Config
	opts Options

	// crypt seals blobs and files of an encrypted repository (nil: unencrypted); master and
	// keyID are the master key and the key file that opened it.
	crypt  *cryptor
	master *masterKey
	keyID  ID

	codec *codecs
	bufs  sync.Pool // *[]byte scratch for compressed blobs
	// smallBufs is scratch for storing blobs of at most smallBlob bytes (see scratchFor).
	smallBufs sync.Pool

	// packs are the open packs of data blobs and of tree blobs (pack_slots.go, packIndex): tree
	// blobs go into packs of their own, so a host without a cache fetches a parent's trees from
	// a few small packs instead of a ranged read each scattered over the data packs.
	packs [2]packSlots
	// ranges is the store's cache of small pack ranges, if it has one (keepTrees,
	// fetchTreePack), and wholeTrees the tree packs fetched whole into it.
	ranges     store.RangeCache
	wholeTrees treePackSet
	// noStream is set once the store answered that it cannot stream packs (sftp://):
	// later packs spool to a temp file without asking again.
	noStream atomic.Bool

	mu        sync.Mutex
	idx       *index
	unindexed []indexedPack // uploaded packs that no index file names yet
	// unindexedBlobs counts the blobs of unindexed.
	unindexedBlobs int
	indexFiles     []ID // index files loaded or written by this value
	// locks are the locks taken through this value and not yet released.
	locks map[*Lock]struct{}
	// indexSkipped are damaged index files Open left out.
	indexSkipped []error
	// lost is the first pack upload that failed: blobs that callers were told are saved are gone,
	// so Flush must fail and no snapshot may be committed on top of this run.
	lost error

	closeOnce sync.Once
	flushMu   sync.Mutex // held by Flush

	stats struct {
		blobsNew, blobsReused, bytesAdded, bytesStored, packs, indexFiles atomic.Int64
		blobsPatched, bytesPatched, bytesPatchedWhole                     atomic.Int64
	}
}

var _ BlobStore = (*Repository)(nil)

// Open reads the config and all index files of the repository on be.
func Open(ctx context.Context, be store.Backend, o Options) (*Repository, error) {
	// The index files are listed while the config is read: over a link that is one round trip
	// instead of two. Their names need no key; they are read once the keys are open.
	type listing struct {
		files []idFile
		err   error
	}
	listed := make(chan listing, 1)
	go func() {
		files, err := listIndexFiles(ctx, be)
		listed <- listing{files, err}
	}()
	cfg, err := LoadConfig(ctx, be)
	if err != nil {
		<-listed // the caller closes be next: nothing may still use it
		return nil, err
	}
	crypt, master, keyID, err := openKeys(ctx, be, cfg, o.Password)
	if err != nil {
		<-listed
		return nil, err
	}
	if o.PackSize == 0 {
		o.PackSize = cfg.PackSize
	}
	if o.Packers <= 0 {
		o.Packers = min(runtime.GOMAXPROCS(0), 4)
	}
	if o.IndexEvery <= 0 {
		o.IndexEvery = 16
	}
	if o.PackBlobs <= 0 {
		o.PackBlobs = DefaultPackBlobs
	}
	if o.IndexEveryBlobs <= 0 {
		o.IndexEveryBlobs = DefaultIndexEveryBlobs
	}
	if o.LockRefresh <= 0 {
		o.LockRefresh = 5 * time.Minute
	}
	if o.LockStale <= 0 {
		o.LockStale = 30 * time.Minute
	}
	o.Clock = clockOr(o.Clock)
	// Each concurrent zstd coder holds its own tables and window; on a 32-core ESXi host one per
	// core would cost more memory than the whole backup may use. Four fastest-level encoders
	// compress faster than a datastore reads.
	if o.Compression == "" {
		o.Compression = cfg.DefaultCompression()
	}
	codec, err := newCodecs(defaultCodecs())
	if err != nil {
		<-listed
		return nil, fmt.Errorf("open repository %s: %w", be.Location(), err)
	}
	o.Password = nil // the master key is what stays in memory, not the password
	r := &Repository{be: be, cfg: *cfg, opts: o, codec: codec, crypt: crypt, master: master, keyID: keyID,
		packs: [2]packSlots{newPackSlots(o.Packers), newPackSlots(treePackers)}, locks: map[*Lock]struct{}{}}
	r.ranges, _ = store.RangeCacheOf(be)
	index := <-listed
	if index.err != nil {
		r.Close()
		return nil, index.err
	}
	if err := r.loadIndexListed(ctx, false, index.files); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Config returns the repository's config.
func (r *Repository) Config() Config { return r.cfg }

// Backend returns the store the repository lives on.
func (r *Repository) Backend() store.Backend { return r.be }

// BlockSize is the disk-image block size chosen at init.
func (r *Repository) BlockSize() int { return r.cfg.BlockSize }

// BlobID is BLAKE3-256 of the plaintext, keyed with the repository's id key when encrypted.
func (r *Repository) BlobID(data []byte) ID { return r.crypt.blobID(data) }

// Stats returns what this value has written so far.
func (r *Repository) Stats() RunStats {
	return RunStats{
		BlobsNew: r.stats.blobsNew.Load(), BlobsReused: r.stats.blobsReused.Load(),
		BytesAdded: r.stats.bytesAdded.Load(), BytesStored: r.stats.bytesStored.Load(),
		PacksUploaded: r.stats.packs.Load(), IndexFiles: r.stats.indexFiles.Load(),
		BlobsPatched: r.stats.blobsPatched.Load(), BytesPatched: r.stats.bytesPatched.Load(),
		BytesPatchedWhole: r.stats.bytesPatchedWhole.Load(),
	}
}

// BlobCount is the number of distinct blobs in the index (loaded plus added by this run).
func (r *Repository) BlobCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.idx.len()
}

func (r *Repository) hook(point string) {
	if r.opts.Hook != nil {
		r.opts.Hook(point)
	}
}

// HasBlob reports whether the blob is stored or queued by this run. The type is not part of the
// key: equal bytes are one blob whatever they were saved as.
func (r *Repository) HasBlob(t BlobType, id ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.idx.lookup(id)
	return ok && e.comp&compDamaged == 0 // a damaged copy is to be stored again
}

// BlobSize returns the plaintext length of a whole (not patch) blob the index knows, without
// reading it: a restore uses it to compare a file already on disk with the snapshot chunk by
// chunk. ok is false for unknown blobs, patches and blobs of this run not yet uploaded.
func (r *Repository) BlobSize(id ID) (size int, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.idx.lookup(id)
	if !ok || e.pack == pendingPack || e.comp&compPatch != 0 {
		return 0, false
	}
	return int(e.raw), true
}

// SaveBlob compresses data in the caller's goroutine and appends it to an open pack, unless the
// repository or a concurrent caller has the blob already. A pack that reaches the pack size is
// uploaded by the caller that filled it. Nothing is durable before Flush returns.
func (r *Repository) SaveBlob(ctx context.Context, t BlobType, id ID, data []byte) (bool, error) {
	if len(data) > MaxBlobSize {
		return false, fmt.Errorf("save blob %s: %d bytes exceed the %d-byte blob limit", id.Short(), len(data), MaxBlobSize)
	}
	if t != DataBlob && t != TreeBlob {
		return false, fmt.Errorf("save blob %s: unknown blob type %d", id.Short(), t)
	}
	r.mu.Lock()
	if need, err := r.admitLocked(id); !need {
		r.mu.Unlock()
		return false, err
	}
	// raw is known already: SavePatch checks a queued base's length.
	r.idx.overlay[id] = indexEntry{pack: pendingPack, typ: t, raw: uint32(len(data))}
	r.mu.Unlock()
	return r.storeBlob(ctx, packEntry{Type: t, ID: id}, data)
}

// storeBlob compresses and (in an encrypted repository) seals data, the plaintext of a blob
// reserved in the index, and appends it to an open pack; SaveBlob and SavePatch share it. e
// gives type, id and flags (blobFlagPatch); the rest is filled in here.
func (r *Repository) storeBlob(ctx context.Context, e packEntry, data []byte) (bool, error) {
	id := e.ID
	bufp, pool := r.scratchFor(len(data))
	defer pool.Put(bufp)
	e.Raw = uint32(len(data))
	codec, stored, err := r.codec.encode(r.opts.Compression, data, *bufp)
	if err != nil {
		r.unreserve([]packEntry{e})
		return false, fmt.Errorf("save blob %s: %w", id.Short(), err)
	}
	if codec != compressionNone {
		*bufp = stored[:0]
	}
	e.Compression = codec
	if r.crypt != nil {
		// Compress, then seal: ciphertext does not compress. The id is the associated data, so
		// a blob's bytes cannot be moved under another id.
		sealp, pool := r.scratchFor(len(stored))
		defer pool.Put(sealp)
		stored = r.crypt.seal((*sealp)[:0], stored, id[:])
		*sealp = stored[:0]
		e.Flags |= blobFlagSealed
	}
	e.Stored = uint32(len(stored))

	slots := r.slotsFor(e.Type)
	p, err := r.takePacker(ctx, slots)
	if err != nil {
		r.unreserve([]packEntry{e})
		return false, fmt.Errorf("save blob %s: %w", id.Short(), err)
	}
	if err := p.add(e, stored); err != nil {
		// A streamed pack fails here, not at upload: the run is lost just the same.
		r.lose(err)
		slots.put(nil)
		r.discard(p)
		r.unreserve([]packEntry{e})
		return false, fmt.Errorf("save blob %s: %w", id.Short(), err)
	}
	r.stats.blobsNew.Add(1)
	r.stats.bytesAdded.Add(int64(len(data)))
	if !r.packFull(p) {
		slots.put(p)
		return true, nil
	}
	slots.put(nil)
	if err := r.upload(ctx, p); err != nil {
		return false, fmt.Errorf("save blob %s: %w", id.Short(), err)
	}
	return true, nil
}

// lose records the first failed pack write or upload: every later save fails with it.
func (r *Repository) lose(err error) {
	r.mu.Lock()
	if r.lost == nil {
		r.lost = err
	}
	r.mu.Unlock()
}

// admitLocked, called with r.mu held, reports whether blob id still has to be stored. After a
// failed pack upload every save fails at once: after "store full" there is no point compressing
// the rest of a 2 TiB disk. A blob the repository or this run has already counts as reused.
func (r *Repository) admitLocked(id ID) (bool, error) {
	if r.lost != nil {
		return false, fmt.Errorf("save blob %s: an earlier pack upload failed: %w", id.Short(), r.lost)
	}
	// A copy check marked damaged is no copy to deduplicate against: store the blob again
	// (lookups then give the new copy).
	if e, ok := r.idx.lookup(id); ok && e.comp&compDamaged == 0 {
		r.stats.blobsReused.Add(1)
		return false, nil
	}
	return true, nil
}

// packFull says whether p is done: big enough, or holding as many blobs as one should.
func (r *Repository) packFull(p *packer) bool {
	return p.size >= r.opts.PackSize || len(p.entries) >= r.opts.PackBlobs
}

// smallBlob is the largest blob whose store scratch comes from smallBufs. A file-tree backup
// saves mostly small files from 8 workers at once: with block-sized scratch each (1 MiB and up,
// grown to the largest chunk seen), that pinned ~8 MiB for blobs of a few KiB.
const smallBlob = 64 << 10

// scratchFor returns scratch to compress or seal a blob of n bytes and the pool it goes back to.
func (r *Repository) scratchFor(n int) (*[]byte, *sync.Pool) {
	if n > smallBlob {
		return r.getBuf(), &r.bufs
	}
	if b, ok := r.smallBufs.Get().(*[]byte); ok {
		return b, &r.smallBufs
	}
	b := make([]byte, 0, smallBlob+smallBlob/4) // s2's worst case is n + n/6 + a few bytes
	return &b, &r.smallBufs
}

func (r *Repository) getBuf() *[]byte {
	if b, ok := r.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, r.cfg.BlockSize+r.cfg.BlockSize/8)
	return &b
}

// unreserve forgets blobs that were queued but will not be stored, so a retry saves them again.
func (r *Repository) unreserve(entries []packEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range entries {
		if cur, ok := r.idx.overlay[e.ID]; ok && cur.pack == pendingPack {
			delete(r.idx.overlay, e.ID)
		}
	}
}

func (r *Repository) discard(p *packer) {
	r.unreserve(p.entries)
	p.close()
}

// upload stores a full pack and records its blobs; every IndexEvery packs it writes an index
// file. Order matters for crash safety: a pack is stored before any index names it.
func (r *Repository) upload(ctx context.Context, p *packer) error {
	id, blobs, size, err := r.storePack(ctx, p)
	if err != nil {
		r.lose(err)
		return err
	}
	r.stats.bytesStored.Add(size)
	r.stats.packs.Add(1)

	r.mu.Lock()
	n := r.idx.addPack(id)
	r.idx.noteTreePack(n, blobs)
	for _, b := range blobs {
		r.idx.overlay[b.ID] = entryOf(n, b)
	}
	r.unindexed = append(r.unindexed, indexedPack{ID: id, Blobs: blobs})
	r.unindexedBlobs += len(blobs)
	var batch []indexedPack
	if len(r.unindexed) >= r.opts.IndexEvery || r.unindexedBlobs >= r.opts.IndexEveryBlobs {
		batch, r.unindexed, r.unindexedBlobs = r.unindexed, nil, 0
	}
	r.mu.Unlock()
	if batch != nil {
		return r.writeIndex(ctx, batch)
	}
	return nil
}

// storePack finishes and uploads a pack, closing its temp file. On failure the pack's blobs are
// unreserved.
func (r *Repository) storePack(ctx context.Context, p *packer) (ID, []packBlob, int64, error) {
	defer p.close()
	id, blobs, err := p.finish(r.crypt)
	if err != nil {
		r.unreserve(p.entries)
		return id, nil, 0, err
	}
	r.hook(HookPackUpload)
	err = p.store(ctx, r.be, id)
	if err != nil && !isExist(err) { // ErrExist: identical bytes already stored
		r.unreserve(p.entries)
		return id, nil, 0, fmt.Errorf("upload pack %s to %s: %w", id.Short(), r.be.Location(), err)
	}
	r.keepTrees(id, p)
	r.hook(HookPackUploaded)
	return id, blobs, p.size, nil
}

// writeIndex stores an index file for packs; on failure they go back to the queue so Flush
// retries them.
func (r *Repository) writeIndex(ctx context.Context, packs []indexedPack) error {
	id, err := r.saveIndexFile(ctx, packs)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.unindexed = append(r.unindexed, packs...)
		for _, p := range packs {
			r.unindexedBlobs += len(p.Blobs)
		}
		return err
	}
	r.indexFiles = append(r.indexFiles, id)
	r.idx.seal(packs)
	return nil
}

func (r *Repository) saveIndexFile(ctx context.Context, packs []indexedPack) (ID, error) {
	r.hook(HookIndexSave)
	id, err := saveFile(ctx, r.be, store.KindIndex, encodeIndexFile(packs), r.crypt)
	if err != nil {
		return id, fmt.Errorf("save index: %w", err)
	}
	r.hook(HookIndexSaved)
	r.stats.indexFiles.Add(1)
	return id, nil
}

// Flush uploads every open pack and writes an index file naming all uploaded packs. After Flush
// returns nil, every blob saved before it is durable and findable by a new Open.
func (r *Repository) Flush(ctx context.Context) error {
	// One Flush at a time: two would each take some of the packers and wait for the others' for
	// good (a backup commits while the host state is saved beside it).
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	held, err := r.takeAll(ctx)
	if err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	// The open packs are finished and committed side by side: over a link each commit waits for
	// its answers, and one after the other they would add their round trips up.
	errs := make([]error, len(held))
	var uploads sync.WaitGroup
	for i, p := range held {
		uploads.Go(func() { errs[i] = r.upload(ctx, p) })
	}
	uploads.Wait()
	errs = slices.DeleteFunc(errs, func(err error) bool { return err == nil })
	r.putAll()
	if len(errs) > 0 {
		return fmt.Errorf("flush: %w", errors.Join(errs...))
	}
	r.mu.Lock()
	lost := r.lost
	batch := r.unindexed
	r.unindexed, r.unindexedBlobs = nil, 0
	r.mu.Unlock()
	if lost != nil {
		// Index what did arrive (it is valid and saves work next time), then report the loss.
		if len(batch) > 0 {
			_ = r.writeIndex(ctx, batch)
		}
		return fmt.Errorf("flush: an earlier pack upload failed: %w", lost)
	}
	if len(batch) > 0 {
		if err := r.writeIndex(ctx, batch); err != nil {
			return fmt.Errorf("flush: %w", err)
		}
	}
	return nil
}

// Close releases locks still held, drops unflushed packs (no snapshot can reference their
// blobs) and frees the codecs. It must not run concurrently with other calls; calling it again
// does nothing.
func (r *Repository) Close() error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		locks := make([]*Lock, 0, len(r.locks))
		for l := range r.locks {
			locks = append(locks, l)
		}
		r.mu.Unlock()
		for _, l := range locks {
			_ = l.Unlock(context.Background())
		}
		held, _ := r.takeAll(context.Background())
		for _, p := range held {
			r.discard(p)
		}
		r.codec.close()
		if r.opts.CloseBackend {
			_ = r.be.Close()
		}
	})
	return nil
}

// LoadBlob reads, decompresses and verifies one blob. A patch blob is rebuilt from its base. When
// several packs hold the blob and the copy the index uses does not verify, the others are tried.
func (r *Repository) LoadBlob(ctx context.Context, t BlobType, id ID, buf []byte) ([]byte, error) {
	e, pack, err := r.locate(t, id)
	if err != nil {
		return nil, err
	}
	r.fetchTreePack(ctx, e, pack)
	return r.tryCopies(ctx, id, e, pack, func(e indexEntry, pack ID) ([]byte, error) {
		return r.loadCopy(ctx, t, id, e, pack, buf)
	})
}

// loadCopy reads and verifies the copy e (in pack) of blob id; a patch is rebuilt from its base.
func (r *Repository) loadCopy(ctx context.Context, t BlobType, id ID, e indexEntry, pack ID, buf []byte) ([]byte, error) {
	if e.comp&compPatch == 0 {
		return r.loadEntry(ctx, id, e, pack, buf)
	}
	plainp := r.getBuf()
	defer r.bufs.Put(plainp)
	plain, err := r.loadEntry(ctx, id, e, pack, (*plainp)[:0])
	if err != nil {
		return nil, err
	}
	*plainp = plain[:0]
	out, err := r.rebuildPatch(ctx, id, plain, buf)
	if err != nil {
		return nil, fmt.Errorf("load %s blob %s (a patch in pack %s): %w", t, id.Short(), pack.Short(), err)
	}
	return out, nil
}

// blobCopy is one indexed copy of a blob and the pack holding it.
type blobCopy struct {
	e    indexEntry
	pack ID
}

// otherCopies returns the indexed copies of id besides the one lookups give.
func (r *Repository) otherCopies(id ID) []blobCopy {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []blobCopy
	for _, e := range r.idx.dups[id] {
		out = append(out, blobCopy{e: e, pack: r.idx.packs[e.pack]})
	}
	return out
}

// tryCopies calls load with the copy (e, pack) and, while that fails, with the blob's other
// copies. It returns the first success, or the first copy's error. A blob in several packs
// (two writers, an interrupted prune, or copies a hostile append-only client planted) therefore
// stays readable as long as one copy is intact.
func (r *Repository) tryCopies(ctx context.Context, id ID, e indexEntry, pack ID, load func(indexEntry, ID) ([]byte, error)) ([]byte, error) {
	out, err := load(e, pack)
	if err == nil || ctx.Err() != nil {
		return out, err
	}
	for _, c := range r.otherCopies(id) {
		if out, cerr := load(c.e, c.pack); cerr == nil {
			return out, nil
		}
	}
	return nil, err
}

// locate finds a blob in the index; it must be in an uploaded pack.
func (r *Repository) locate(t BlobType, id ID) (indexEntry, ID, error) {
	r.mu.Lock()
	e, ok := r.idx.lookup(id)
	var pack ID
	if ok && e.pack != pendingPack {
		pack = r.idx.packs[e.pack]
	}
	r.mu.Unlock()
	if !ok {
		return e, pack, fmt.Errorf("load %s blob %s: %w", t, id.Short(), ErrBlobNotFound)
	}
	if e.pack == pendingPack {
		return e, pack, fmt.Errorf("load %s blob %s: still in an unfinished pack (Flush first)", t, id.Short())
	}
	return e, pack, nil
}

// loadEntry reads and decodes one stored blob into buf: the verified plaintext of a whole
// blob, or the checked but not yet applied plaintext of a patch.
func (r *Repository) loadEntry(ctx context.Context, id ID, e indexEntry, pack ID, buf []byte) ([]byte, error) {
	rd, err := r.be.Load(ctx, store.Handle{Kind: store.KindData, Name: pack.String()}, int64(e.offset), int64(e.stored))
	if err != nil {
		return nil, fmt.Errorf("load blob %s from pack %s at offset %d: %w", id.Short(), pack.Short(), e.offset, err)
	}
	defer rd.Close()
	// A blob bigger than the pooled scratch gets a buffer of its own, dropped after: pooled
	// buffers grown to the largest chunk stayed pinned, one per concurrent load.
	bufp, pool := r.scratchFor(int(e.stored))
	defer pool.Put(bufp)
	stored := grow(*bufp, int(e.stored))
	if _, err := io.ReadFull(rd, stored); err != nil {
		return nil, fmt.Errorf("read blob %s from pack %s: %w", id.Short(), pack.Short(), err)
	}
	return r.decodeEntry(id, e, pack, stored, buf)
}

// decodeEntry decodes the stored bytes of the index entry e into buf (see decodeBlob).
func (r *Repository) decodeEntry(id ID, e indexEntry, pack ID, stored, buf []byte) ([]byte, error) {
	// The in-memory index keeps no flags (memory per blob counts): every blob of a repository
	// is sealed exactly when the repository is, which pack headers and decodeBlob enforce, and
	// the patch flag lives in comp's high bit.
	var flags uint16
	if r.crypt != nil {
		flags = blobFlagSealed
	}
	if e.comp&compPatch != 0 {
		flags |= blobFlagPatch
	}
	out, err := r.decodeBlob(packEntry{Type: e.typ, ID: id, Compression: e.comp &^ compFlags, Flags: flags, Raw: e.raw}, stored, buf)
	if err != nil {
		return nil, fmt.Errorf("load blob %s from pack %s at offset %d: %w", id.Short(), pack.Short(), e.offset, err)
	}
	return out, nil
}

// decodeBlob turns stored bytes into plaintext in buf and checks them against the id. stored is
// left unchanged (prune copies it to a new pack after the check). A patch's plaintext cannot be
// checked against the id without its base: it is only parsed here (rebuildPatch checks the id).
func (r *Repository) decodeBlob(e packEntry, stored, buf []byte) ([]byte, error) {
	if err := r.crypt.checkSealed(e.Flags); err != nil {
		return nil, err
	}
	if r.crypt != nil {
		plainp := r.getBuf()
		defer r.bufs.Put(plainp)
		plain, err := r.crypt.open((*plainp)[:0], stored, e.ID[:])
		if err != nil {
			return nil, err
		}
		*plainp = plain[:0]
		stored = plain
	}
	out, err := r.codec.decode(e.Compression, stored, buf, int(e.Raw))
	if err != nil {
		return nil, err
	}
	if e.Flags&blobFlagPatch != 0 {
		if len(out) != int(e.Raw) {
			return nil, fmt.Errorf("patch has %d bytes, want %d: %w", len(out), e.Raw, ErrCorrupt)
		}
		if _, err := parsePatch(out); err != nil {
			return nil, err
		}
		return out, nil
	}
	if len(out) != int(e.Raw) || r.crypt.blobID(out) != e.ID {
		return nil, fmt.Errorf("content does not match its id: %w", ErrCorrupt)
	}
	return out, nil
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}
