package repo

import (
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
