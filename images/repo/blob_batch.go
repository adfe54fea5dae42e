package repo

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/snapferry/snapferry/images/store"
)

// Loading blobs one store request each costs, per blob, a round trip and on ssh:// a request
// frame and a pack opened on the far side: restoring /usr/share (53 000 small files) from a
// loopback ssh:// repository took 6x as long as from a local folder. Blobs that were backed up
// together sit side by side in a pack, so a batch sorted by place reads in a few ranged Loads.
const (
	// batchGap is how many bytes between two wanted blobs of a pack are read and dropped rather
	// than paying for another request: about a round trip's worth on a LAN or a slow WAN.
	batchGap = 128 << 10
	// batchSpan bounds one ranged read. Memory does not depend on it (a run is read as a
	// stream, one blob at a time); it keeps one request from holding a far side's stream long.
	batchSpan = 32 << 20
)

// BatchLoader is a BlobStore that loads many blobs with fewer store requests than one each.
type BatchLoader interface {
	LoadBlobs(ctx context.Context, t BlobType, ids []ID, fn func(i int, data []byte, err error) error) error
}

// LoadBlobs calls fn once for every position i of ids, with the verified plaintext of ids[i] or
// with the error LoadBlob would have returned for it, in an order the store chooses (a
// Repository goes pack by pack). data is only valid during the call and must not be modified:
// a blob listed twice is delivered to both positions from one buffer. An error from fn, or ctx
// ending, stops the load and is returned. A store that is no BatchLoader loads blob by blob.
func LoadBlobs(ctx context.Context, bs BlobStore, t BlobType, ids []ID, fn func(i int, data []byte, err error) error) error {
	if b, ok := bs.(BatchLoader); ok {
		return b.LoadBlobs(ctx, t, ids, fn)
	}
	var buf []byte
	for i, id := range ids {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		data, err := bs.LoadBlob(ctx, t, id, buf)
		if err == nil {
			buf = data
		}
		if err := fn(i, data, err); err != nil {
			return err
		}
	}
	return nil
}

// batchBlob is one distinct blob of a batch, found in the index.
type batchBlob struct {
	id   ID
	e    indexEntry
	pack ID
	at   []int // its positions in the caller's ids
}

// LoadBlobs is the BatchLoader of a Repository: see the package function LoadBlobs.
func (r *Repository) LoadBlobs(ctx context.Context, t BlobType, ids []ID, fn func(i int, data []byte, err error) error) error {
	deliverTo := fn
	fn = func(i int, data []byte, err error) error {
		// The copy the index uses failed: LoadBlob tries the blob's other copies, if any.
		if err != nil && ctx.Err() == nil && len(r.otherCopies(ids[i])) > 0 {
			data, err = r.LoadBlob(ctx, t, ids[i], nil)
		}
		return deliverTo(i, data, err)
	}
	blobs, patches, err := r.placeBatch(ctx, t, ids, fn)
	if err != nil {
		return err
	}
	r.fetchTreePacks(ctx, t, blobs)
	if blobs, err = r.loadCached(ctx, blobs, fn); err != nil {
		return err
	}
	if err := r.loadRuns(ctx, t, blobs, fn); err != nil {
		return err
	}
	// A patch needs its own load and then its base's: two round trips each over a link, so a
	// couple are loaded at once (an image's changed blocks are patches, one per changed block).
	// Each rebuilt block goes into pooled block scratch, given back once delivered.
	type rebuilt struct {
		buf  *[]byte
		data []byte
	}
	return forEachInOrder(ctx, patchesAhead, len(patches), func(ctx context.Context, k int) (rebuilt, error) {
		buf := r.getBuf()
		data, err := r.LoadBlob(ctx, t, ids[patches[k]], (*buf)[:0])
		return rebuilt{buf, data}, err
	}, func(k int, v rebuilt, err error) error {
		defer r.bufs.Put(v.buf)
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return fn(patches[k], v.data, err)
	})
}

// patchesAhead is how many patch blobs a LoadBlobs call loads at once: each holds a whole block
// (two while it is rebuilt), and a restore runs one LoadBlobs per worker.
const patchesAhead = 2

// placeBatch looks every blob up and returns the ones to read in runs, each once, sorted by
// pack and offset, and the positions of patches: they need their base and go through LoadBlob.
// Blobs it cannot place (not in the index) get their error at once.
func (r *Repository) placeBatch(ctx context.Context, t BlobType, ids []ID, fn func(int, []byte, error) error) ([]batchBlob, []int, error) {
	seen := make(map[ID]int, len(ids))
	blobs := make([]batchBlob, 0, len(ids))
	var patches []int
	for i, id := range ids {
		if k, ok := seen[id]; ok {
			blobs[k].at = append(blobs[k].at, i)
			continue
		}
		e, pack, err := r.locate(t, id)
		if err == nil && e.comp&compPatch != 0 {
			patches = append(patches, i)
			continue
		}
		if err != nil {
			if err := fn(i, nil, err); err != nil {
				return nil, nil, err
			}
			continue
		}
		seen[id] = len(blobs)
		blobs = append(blobs, batchBlob{id: id, e: e, pack: pack, at: []int{i}})
	}
	slices.SortFunc(blobs, func(a, b batchBlob) int {
		if c := cmp.Compare(a.e.pack, b.e.pack); c != 0 {
			return c
		}
		return cmp.Compare(a.e.offset, b.e.offset)
	})
	return blobs, patches, nil
}

// batchRun is how many of the sorted blobs one ranged Load reads: same pack, gaps of at most
// batchGap, at most batchSpan from the first byte to the last.
func batchRun(blobs []batchBlob) int {
	first := int64(blobs[0].e.offset)
	end := first + int64(blobs[0].e.stored)
	n := 1
	for ; n < len(blobs); n++ {
		b := blobs[n]
		off, stop := int64(b.e.offset), int64(b.e.offset)+int64(b.e.stored)
		if b.e.pack != blobs[0].e.pack || off > end+batchGap || stop-first > batchSpan {
			break
		}
		end = max(end, stop)
	}
	return n
}

// runRange is the byte range of its pack one ranged Load of run reads.
func runRange(run []batchBlob) (start, end int64) {
	start = int64(run[0].e.offset)
	for _, b := range run {
		end = max(end, int64(b.e.offset)+int64(b.e.stored))
	}
	return start, end
}

// openRun sends run's ranged Load.
func (r *Repository) openRun(ctx context.Context, run []batchBlob) (io.ReadCloser, error) {
	start, end := runRange(run)
	return r.be.Load(ctx, store.Handle{Kind: store.KindData, Name: run[0].pack.String()}, start, end-start)
}

// loadRun reads one run from its ranged Load (rd, or the error opening it) and delivers its
// blobs in order. A failed Load or read gives the blobs not yet delivered that error; each blob
// is decoded and checked on its own, so one damaged blob spoils only itself.
func (r *Repository) loadRun(ctx context.Context, t BlobType, run []batchBlob, rd io.ReadCloser, err error, fn func(int, []byte, error) error) error {
	start, _ := runRange(run)
	pack := run[0].pack
	if err != nil {
		return r.failRun(ctx, run, fmt.Errorf("load %d blobs from pack %s at offset %d: %w", len(run), pack.Short(), start, err), fn)
	}
	defer rd.Close()
	most := 0
	for _, b := range run {
		most = max(most, int(b.e.stored), int(b.e.raw))
	}
	storedp, plainp, release := r.runScratch(most)
	defer release()
	pos := start
	for k, b := range run {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		off := int64(b.e.offset)
		if off < pos {
			// Two index entries share bytes: no healthy index has that. The stream has moved
			// past this blob, so it is read on its own and decoding will judge it.
			data, err := r.loadEntry(ctx, b.id, b.e, b.pack, (*plainp)[:0])
			if err == nil {
				*plainp = data[:0]
			}
			if err := deliver(b, data, err, fn); err != nil {
				return err
			}
			continue
		}
		stored := grow(*storedp, int(b.e.stored))
		*storedp = stored[:0]
		if _, err := io.CopyN(io.Discard, rd, off-pos); err != nil {
			return r.failRun(ctx, run[k:], fmt.Errorf("read pack %s at offset %d: %w", pack.Short(), pos, err), fn)
		}
		if _, err := io.ReadFull(rd, stored); err != nil {
			return r.failRun(ctx, run[k:], fmt.Errorf("read blob %s from pack %s: %w", b.id.Short(), pack.Short(), err), fn)
		}
		pos = off + int64(b.e.stored)
		data, err := r.decodeEntry(b.id, b.e, pack, stored, (*plainp)[:0])
		if err == nil {
			*plainp = data[:0]
			if len(run) > 1 {
				r.offerTree(t, pack, off, stored)
			}
		}
		if err := deliver(b, data, err, fn); err != nil {
			return err
		}
	}
	return nil
}

// runScratch returns the two buffers a run whose largest blob has most bytes is read and decoded
// in, and the func that gives them back. Runs of small blobs (most files of a tree) share pooled
// small scratch, runs of blocks (every block of a disk image) pooled block-sized scratch: a
// restore read gigabytes through two fresh buffers per run (a MiB each), and that garbage made
// the collector run and the kernel fault pages in again for every run. A run with a blob larger
// than a pooled buffer (a big chunk of a tree) gets scratch of its own, dropped after: pooled
// buffers grown to the largest file met, two per worker, pinned ~16 MiB in a /usr/share restore.
func (r *Repository) runScratch(most int) (stored, plain *[]byte, release func()) {
	stored, storedPool := r.scratchFor(most)
	plain, plainPool := r.scratchFor(most)
	if cap(*stored) >= most && cap(*plain) >= most {
		return stored, plain, func() { storedPool.Put(stored); plainPool.Put(plain) }
	}
	storedPool.Put(stored)
	plainPool.Put(plain)
	s, p := make([]byte, 0, most), make([]byte, 0, most)
	return &s, &p, func() {}
}

// failRun gives every blob of run the error err, unless the load was cancelled.
func (r *Repository) failRun(ctx context.Context, run []batchBlob, err error, fn func(int, []byte, error) error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	for _, b := range run {
		if err := deliver(b, nil, err, fn); err != nil {
			return err
		}
	}
	return nil
}

// deliver hands one blob's result to every position it was asked for at.
func deliver(b batchBlob, data []byte, err error, fn func(int, []byte, error) error) error {
	for _, i := range b.at {
		if err := fn(i, data, err); err != nil {
			return err
		}
	}
	return nil
}
