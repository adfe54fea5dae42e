package repo

import (
	"bytes"
	"context"
	"io"
	"sync"

	"github.com/snapferry/snapferry/images/blobhash"
	"github.com/snapferry/snapferry/images/store"
)

// Tree blobs are written into packs of their own (pack_slots.go). A host whose cache does not
// hold a parent snapshot's trees (another host, a rebuilt one) needs all of them, and they sit
// in a few tree packs: each is fetched whole once, with one request, and its trees go to the
// store's range cache, where the batched and single loads find them. Ranged reads of one tree
// or a few siblings each cost 1 667 requests for a small tree on s3:// (restic, which caches
// its tree packs whole, needed 19). Without a range cache there is nowhere to keep a pack's
// other trees, and loads stay ranged.

// wholeTreePackMax is the largest tree pack fetched whole: a bound on the bytes one tree that
// is wanted can bring along. Tree packs close at Options.PackBlobs blobs, a few MiB of
// directory trees; packs of big block-map chunks, which the range cache declines anyway
// (metacache.MaxRange), stay ranged past it.
const wholeTreePackMax = 16 << 20

// treePackSet tracks the packs this value fetched whole, so concurrent loaders fetch each once
// and wait for each other, and a pack whose trees the cache dropped since is not fetched again.
type treePackSet struct {
	mu      sync.Mutex
	fetched map[ID]chan struct{} // closed when the fetch ended, well or not
}

// noteTreePack records pack number n, of the given blobs, in x.trees if every blob in it is a
// tree blob: such a pack can be fetched whole (fetchTreePack). Called as packs are indexed.
func (x *index) noteTreePack(n uint32, blobs []packBlob) {
	var end uint32
	for _, b := range blobs {
		if b.Type != TreeBlob {
			return
		}
		end = max(end, b.Offset+b.Stored)
	}
	if len(blobs) == 0 {
		return
	}
	if x.trees == nil {
		x.trees = map[uint32]uint32{}
	}
	x.trees[n] = end
}

// fetchTreePacks fetches whole the tree packs holding blobs of a tree batch that the range
// cache lacks, before the batch looks in the cache (LoadBlobs).
func (r *Repository) fetchTreePacks(ctx context.Context, t BlobType, blobs []batchBlob) {
	if r.ranges == nil || t != TreeBlob {
		return
	}
	for i, b := range blobs {
		if i > 0 && blobs[i-1].pack == b.pack { // sorted by pack: one try per pack
			continue
		}
		r.fetchTreePack(ctx, b.e, b.pack)
	}
}

// fetchTreePack fetches the pack holding the tree blob e whole, if it holds trees only and the
// range cache lacks e, and offers its trees to the cache. Failures are not reported: the blob is
// then loaded by itself, as without this, and reports its own error.
func (r *Repository) fetchTreePack(ctx context.Context, e indexEntry, pack ID) {
	if r.ranges == nil || e.typ != TreeBlob {
		return
	}
	// A tree longer than the cache keeps is never found there: fetching its pack for it would
	// happen again every run.
	h := store.Handle{Kind: store.KindData, Name: pack.String()}
	if int64(e.stored) > r.ranges.RangeLimit() || r.ranges.HasRange(h, int64(e.offset), int64(e.stored)) {
		return
	}
	r.mu.Lock()
	end, ok := r.idx.trees[e.pack]
	r.mu.Unlock()
	if !ok || end > wholeTreePackMax {
		return
	}
	r.wholeTrees.mu.Lock()
	done, started := r.wholeTrees.fetched[pack]
	if !started {
		if r.wholeTrees.fetched == nil {
			r.wholeTrees.fetched = map[ID]chan struct{}{}
		}
		done = make(chan struct{})
		r.wholeTrees.fetched[pack] = done
	}
	r.wholeTrees.mu.Unlock()
	if started {
		select { // another loader is fetching it: its trees are in the cache when it is done
		case <-done:
		case <-ctx.Done():
		}
		return
	}
	defer close(done)
	data, err := r.loadWholePack(ctx, h, pack)
	if err != nil {
		return
	}
	blobs, err := decodePackTail(data, int64(len(data)), r.crypt)
	if err != nil {
		return
	}
	for _, b := range blobs {
		if b.Type == TreeBlob && int64(b.Offset)+int64(b.Stored) <= int64(len(data)) {
			r.ranges.KeepRange(h, int64(b.Offset), io.NewSectionReader(bytes.NewReader(data), int64(b.Offset), int64(b.Stored)))
		}
	}
}

// loadWholePack reads pack whole and checks it against its name (the BLAKE3 of its bytes): its
// ranges are kept for later runs, so a damaged transfer must not be.
func (r *Repository) loadWholePack(ctx context.Context, h store.Handle, pack ID) ([]byte, error) {
	rd, err := r.be.Load(ctx, h, 0, 0)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	data, err := io.ReadAll(io.LimitReader(rd, 2*wholeTreePackMax)) // the tail too; a longer pack fails the check
	if err != nil {
		return nil, err
	}
	if ID(blobhash.Sum256(data)) != pack {
		return nil, ErrCorrupt
	}
	return data, nil
}
