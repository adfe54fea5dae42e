package disk

import (
	"context"
	"fmt"
)

// eachExtent calls fn for every data range of the source in disk order, clipped to the image,
// from offset 0; fn returns the offset to look from next (the end of what it consumed). Both
// readers (whole blocks, and pieces over a parent) walk the source through it, so a source that
// answers with a range past the end or an empty range fails here instead of reading past the
// image or looking at the same offset for ever.
func (b *diskBackup) eachExtent(fn func(start, end int64) (next int64, err error)) error {
	return walkExtents(b.size, b.extents, fn)
}

// walkExtents is eachExtent for any map of a disk of size bytes: the backup's readers and the
// prehash pass (prehash.go) walk an image the same way.
func walkExtents(size int64, extents func(off int64) (start, end int64, ok bool, err error),
	fn func(start, end int64) (next int64, err error)) error {
	for off := int64(0); off < size; {
		start, end, ok, err := extents(off)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		start, end = max(start, off), min(end, size)
		if end <= start {
			return fmt.Errorf("the source returned the empty range %d-%d after %d", start, end, off)
		}
		if off, err = fn(start, end); err != nil {
			return err
		}
	}
	return nil
}

// carryRest ends a walk: the blocks from next on had no data this time, so they take their
// parent's blob (or are holes), and count as done.
func (b *diskBackup) carryRest(ctx context.Context, jobs chan<- blockJob, seq *uint64, next int64) error {
	if err := b.carry(ctx, jobs, seq, next, b.nblocks); err != nil {
		return err
	}
	if rest := b.size - next*int64(b.blockSize); rest > 0 {
		b.progress.Add(rest)
	}
	return nil
}
