package disk

import (
	"context"
	"fmt"
	"io"
	"math/bits"
	"os"
	"path/filepath"

	"github.com/snapferry/snapferry/images/repo"
)

// Prehash is the fingerprint-cache pass of an image's next backup, run ahead of the backup
// while its repository is being opened (an ssh:// link takes 0.1-0.4 s to dial, start serve and
// shake hands): it reads the image's allocated blocks in order and marks each one whose fast
// hash equals the entry of the source's block fingerprint cache (docs/block-cache.md). When the
// backup starts, it stops the pass (Backup does, through Options.Prehash) and does not read the
// marked blocks again; it reads and hashes the rest, from where the pass stopped, as before.
//
// Nothing here reads or trusts the repository. The pass only learns "block i holds the bytes it
// held last run"; whether the repository still has that block's blob is asked by the backup,
// under its lock, exactly as for a block it hashed itself (HasBlob), and a block whose blob is
// gone is read and stored again. The blocks were read a moment earlier than the backup would
// have read them, which for the frozen source a backup needs changes nothing; for a live one,
// the "modified while being read" check starts when the pass did.
//
// The pass finds the cache file without knowing the repository: the file's header names the
// repository it was written for, and the file is the source's only if CachePath of that id and
// the key gives its name. Backup uses the marks only if the file it opens is that same file,
// with the same seed, block size and disk size, and the image is still the same file.
type Prehash struct {
	cache     string
	repoID    string
	seed      uint64
	blockSize int
	size      int64
	before    os.FileInfo // the image's stat when the pass began

	cancel context.CancelFunc
	done   chan struct{}

	// Written by the pass goroutine, read after done.
	same     []uint64 // bitset of blocks found unchanged
	frontier int64    // blocks below this index were all looked at
}

// StartPrehash starts the pass for the image at path (absolute: the key of its cache, see
// CachePath) with the caches in cacheDir. It returns nil when there is nothing to do: no cache
// dir, no cache file of this source, or an unreadable image (the backup then reports that).
// When the source has caches for several repositories, the newest is used; a wrong guess only
// means Backup ignores the marks. The caller must Stop it (Backup does when given it).
func StartPrehash(ctx context.Context, path, cacheDir string) *Prehash {
	if cacheDir == "" {
		return nil
	}
	cache, hdr, ok := findCache(cacheDir, path)
	if !ok {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	before, err := f.Stat()
	if err != nil || !before.Mode().IsRegular() {
		f.Close()
		return nil
	}
	old, err := openFingerprints(cache, hdr.repoID, hdr.blockSize)
	if err != nil {
		f.Close()
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &Prehash{cache: cache, repoID: hdr.repoID, seed: hdr.seed, blockSize: hdr.blockSize,
		size: before.Size(), before: before, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer f.Close()
		defer old.close()
		p.pass(ctx, f, old)
	}()
	return p
}

// findCache returns the cache file in dir whose name is CachePath(dir, its repository, key),
// the newest if there are several.
func findCache(dir, key string) (string, fpHeader, bool) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fpHeader{}, false
	}
	var best string
	var bestHdr fpHeader
	var bestTime int64
	for _, e := range entries {
		if len(e.Name()) != 64 || !e.Type().IsRegular() {
			continue // temp files of running or killed backups
		}
		p := filepath.Join(dir, e.Name())
		h, ok := readFPHeader(p)
		if !ok || CachePath(dir, h.repoID, key) != p {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		if t := fi.ModTime().UnixNano(); best == "" || t > bestTime {
			best, bestHdr, bestTime = p, h, t
		}
	}
	return best, bestHdr, best != ""
}

func readFPHeader(path string) (fpHeader, bool) {
	f, err := os.Open(path)
	if err != nil {
		return fpHeader{}, false
	}
	defer f.Close()
	var hb [fpHeaderSize]byte
	if _, err := io.ReadFull(f, hb[:]); err != nil {
		return fpHeader{}, false
	}
	h, err := parseFPHeader(hb[:])
	return h, err == nil && h.blockSize > 0
}

// pass walks the allocated extents in order, as diskBackup.read does (walkExtents), and marks
// the blocks whose fast hash matches their cache entry, until the image ends or ctx is
// cancelled. Any error just ends the pass: the backup reads on from its frontier and reports it.
func (p *Prehash) pass(ctx context.Context, f *os.File, old *fpReader) {
	bsz := int64(p.blockSize)
	m := &extentMapper{f: f, size: p.size}
	buf := make([]byte, bsz)
	_ = walkExtents(p.size, m.next, func(start, end int64) (int64, error) {
		first, last := max(start/bsz, p.frontier), (end-1)/bsz
		p.frontier = first
		for i := first; i <= last; i++ {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			n := int(min(bsz, p.size-i*bsz))
			if e, has := old.lookup(i, n); has {
				if m, err := f.ReadAt(buf[:n], i*bsz); m < n {
					return 0, fmt.Errorf("read block %d: %w", i, err)
				}
				if fastHash(buf[:n], p.seed) == e.fast {
					p.mark(i)
				}
			}
			p.frontier = i + 1
		}
		return p.frontier * bsz, nil
	})
}

func (p *Prehash) mark(i int64) {
	w := int(i / 64)
	for len(p.same) <= w {
		p.same = append(p.same, 0)
	}
	p.same[w] |= 1 << (i % 64)
}

// Stop ends the pass and waits for it; the marks made so far stay usable.
func (p *Prehash) Stop() {
	if p == nil {
		return
	}
	p.cancel()
	<-p.done
}

// Done is closed when the pass has ended: it reached the end of the image, or was stopped.
func (p *Prehash) Done() <-chan struct{} { return p.done }

// Counts says how many blocks the pass looked at (index below its frontier, holes included)
// and how many of them it found unchanged. Call it only after Done.
func (p *Prehash) Counts() (looked, unchanged int64) {
	for _, w := range p.same {
		unchanged += int64(bits.OnesCount64(w))
	}
	return p.frontier, unchanged
}

// Unchanged reports whether the pass found block i unchanged since the cache was written. Call
// it only after Done.
func (p *Prehash) Unchanged(i int64) bool {
	if p == nil || i >= p.frontier {
		return false
	}
	w := int(i / 64)
	return w < len(p.same) && p.same[w]&(1<<(i%64)) != 0
}

// prehashFor returns the stopped pass when its marks hold for this backup (the same cache file,
// repository, seed, block size and image), else nil.
func prehashFor(p *Prehash, f *os.File, opts Options, old *fpReader, blockSize int, size int64) *Prehash {
	if p == nil {
		return nil
	}
	p.Stop()
	now, err := f.Stat()
	switch {
	case opts.Rehash, old == nil, err != nil:
		return nil
	case p.cache != opts.Cache || p.repoID != opts.RepoID || p.seed != old.hdr.seed:
		return nil
	case p.blockSize != blockSize || p.size != size || !os.SameFile(p.before, now):
		return nil
	}
	return p
}

// prehashedBlock is the result of a block the pass found unchanged: the cache entry's blob when
// the repository still has it, like store's own cache hit. Otherwise (a prune removed the blob
// since the last backup) the block is read now, into a buffer of its own (rare, so not from the
// reader's pool), and stored as any changed block.
func (b *diskBackup) prehashedBlock(j blockJob) (blockResult, []byte, error) {
	if !b.bs.HasBlob(repo.DataBlob, j.cached.id) {
		buf := make([]byte, blockLen(repo.Disk{Size: b.size, BlockSize: b.blockSize}, j.index))
		if m, err := b.src.ReadAt(buf, j.index*int64(b.blockSize)); m < len(buf) {
			return blockResult{}, nil, readErr(err, j.index*int64(b.blockSize)+int64(m), b.size)
		}
		return blockResult{}, buf, nil
	}
	n := blockLen(repo.Disk{Size: b.size, BlockSize: b.blockSize}, j.index)
	b.blocksCached.Add(1)
	b.count(false, n)
	b.progress.Add(int64(n))
	return blockResult{index: j.index, n: n, id: j.cached.id, fast: j.cached.fast,
		base: j.cached.base, baseSubs: j.cached.baseSubs}, nil, nil
}
