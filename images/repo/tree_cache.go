package repo

import (
	"bytes"
	"context"
	"io"

	"github.com/snapferry/snapferry/images/store"
)

// keepTrees offers the tree blobs of pack id, just stored from the temp file p was built in,
// to the store's range cache (store.RangeCache: the metadata cache in front of s3://). A file
// backup with a parent reads every tree of the parent snapshot, each a small ranged request
// on an object store: 3 037 GETs for /usr/share after a full backup that had written those very
// trees. Offered here, the next backup of this host reads them from disk. Offsets and lengths
// are the ones loadEntry and batched loads ask for. Streamed packs (stores that take bytes
// before the name is known) have no temp file to read back and are not offered; no store that
// streams has a range cache.
func (r *Repository) keepTrees(id ID, p *packer) {
	if r.ranges == nil || p.f == nil {
		return
	}
	h := store.Handle{Kind: store.KindData, Name: id.String()}
	var off int64
	for _, e := range p.entries {
		if e.Type == TreeBlob {
			r.ranges.KeepRange(h, off, io.NewSectionReader(p.f, off, int64(e.Stored)))
		}
		off += int64(e.Stored)
	}
}

// loadCached delivers the blobs of a batch whose ranges the store's range cache holds, each
// from the cache, and returns the others for ranged loads. Without this a run spanning two
// cached trees and the data between them would be one Load of a range nobody cached: a
// request for bytes that are on disk.
func (r *Repository) loadCached(ctx context.Context, blobs []batchBlob, fn func(int, []byte, error) error) ([]batchBlob, error) {
	if r.ranges == nil {
		return blobs, nil
	}
	rest := blobs[:0:0]
	var buf []byte
	for _, b := range blobs {
		if !r.ranges.HasRange(store.Handle{Kind: store.KindData, Name: b.pack.String()}, int64(b.e.offset), int64(b.e.stored)) {
			rest = append(rest, b)
			continue
		}
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		data, err := r.loadEntry(ctx, b.id, b.e, b.pack, buf[:0])
		if err == nil {
			buf = data
		}
		if err := deliver(b, data, err, fn); err != nil {
			return nil, err
		}
	}
	return rest, nil
}

// offerTree offers one tree blob read as part of a longer ranged load to the range cache, under
// its own range: the range a later LoadBlob (or loadCached) asks for.
func (r *Repository) offerTree(t BlobType, pack ID, offset int64, stored []byte) {
	if r.ranges != nil && t == TreeBlob {
		r.ranges.KeepRange(store.Handle{Kind: store.KindData, Name: pack.String()}, offset,
			io.NewSectionReader(bytes.NewReader(stored), 0, int64(len(stored))))
	}
}
