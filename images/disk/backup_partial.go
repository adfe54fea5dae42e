package disk

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/snapferry/snapferry/images/pipeline"
	"github.com/snapferry/snapferry/images/repo"
)

// readPartial is read for a source whose ranges are exact (a dirty bitmap) with a parent
// (SourceOptions.PartialBlocks): a block the ranges cover whole is read whole; of a block they
// cover in part only the ranges' bytes are read from the source, over the parent's block loaded
// from the repository (zeros where the parent has a hole). The block's id is still the hash of
// all its bytes, so it dedups and verifies as any other. Reads go out in disk order: for each
// block its pieces (the ranges clipped to the block, adjacent ones merged) in order, or the
// whole block; a source can foresee them from its ranges.
func (b *diskBackup) readPartial(ctx context.Context, pool *pipeline.BufferPool, jobs chan<- blockJob) error {
	bsz := int64(b.blockSize)
	var seq uint64
	next := int64(0) // first block not yet sent, carried or skipped
	cur := int64(-1) // the block whose pieces are being gathered
	var pieces [][2]int64
	emit := func() error {
		if cur < 0 {
			return nil
		}
		if err := b.carry(ctx, jobs, &seq, next, cur); err != nil {
			return err
		}
		b.progress.Add((cur - next) * bsz) // carried and skipped blocks
		buf, err := pool.Get(ctx)
		if err != nil {
			return err
		}
		j, err := b.gather(ctx, cur, buf[:min(bsz, b.size-cur*bsz)], pieces)
		if err != nil {
			pool.Put(buf)
			return err
		}
		j.seq = seq
		if err := pipeline.Send(ctx, jobs, j); err != nil {
			pool.Put(buf)
			return err
		}
		seq++
		next, cur, pieces = cur+1, -1, pieces[:0]
		return nil
	}
	err := b.eachExtent(func(start, end int64) (int64, error) {
		for s := start; s < end; {
			i := s / bsz
			e := min(end, (i+1)*bsz)
			if i != cur {
				if err := emit(); err != nil {
					return 0, err
				}
				cur = i
			}
			if n := len(pieces); n > 0 && pieces[n-1][1] == s {
				pieces[n-1][1] = e
			} else {
				pieces = append(pieces, [2]int64{s, e})
			}
			s = e
		}
		return end, nil
	})
	if err != nil {
		return err
	}
	if err := emit(); err != nil {
		return err
	}
	return b.carryRest(ctx, jobs, &seq, next)
}

// gather fills buf with block i when pieces cover it whole; else it reads the pieces into their
// places and leaves the rest to completeFromParent, run by the worker that stores the block, so
// the loads of parent blocks (a round trip each on a remote repository) overlap. A block
// patched over a whole parent blob names that blob as the patch base and the sub-blocks the
// pieces touch.
func (b *diskBackup) gather(ctx context.Context, i int64, buf []byte, pieces [][2]int64) (blockJob, error) {
	base := i * int64(b.blockSize)
	var covered int64
	for _, p := range pieces {
		covered += p[1] - p[0]
	}
	j := blockJob{index: i, buf: buf}
	if covered == int64(len(buf)) {
		if m, err := b.src.ReadAt(buf, base); m < len(buf) {
			return j, fmt.Errorf("read block %d: %w", i, readErr(err, base+int64(m), b.size))
		}
		b.bytesRead.Add(covered)
		return j, nil
	}
	pid, err := b.parent.id(ctx, i)
	if err != nil {
		return j, err
	}
	for _, p := range pieces {
		if m, err := b.src.ReadAt(buf[p[0]-base:p[1]-base], p[0]); m < int(p[1]-p[0]) {
			return j, fmt.Errorf("read %d bytes at %d: %w", p[1]-p[0], p[0], readErr(err, p[0]+int64(m), b.size))
		}
		j.pieces = append(j.pieces, [2]int{int(p[0] - base), int(p[1] - base)})
	}
	b.bytesRead.Add(covered)
	j.fromParent, j.parentID = true, pid
	if !pid.IsZero() && b.patch {
		j.patchBase = pid
		sub := b.subSize
		for _, p := range j.pieces {
			for k := p[0] / sub; k <= (p[1]-1)/sub; k++ {
				if n := len(j.changed); n == 0 || j.changed[n-1] < k {
					j.changed = append(j.changed, k)
				}
			}
		}
	}
	return j, nil
}

// completeFromParent fills the bytes of j's block outside its pieces from the parent's block
// (zeros where the parent has a hole).
func (b *diskBackup) completeFromParent(ctx context.Context, j blockJob) error {
	parent := b.zero[:len(j.buf)]
	if !j.parentID.IsZero() {
		sp, _ := b.scratch.Get().(*[]byte)
		if sp == nil {
			sp = new([]byte)
		}
		defer b.scratch.Put(sp)
		data, err := b.bs.LoadBlob(ctx, repo.DataBlob, j.parentID, (*sp)[:0])
		if err != nil {
			return fmt.Errorf("load block %d of the parent disk to complete it: %w", j.index, err)
		}
		*sp = data[:0]
		if len(data) != len(j.buf) {
			return fmt.Errorf("block %d of the parent disk holds %d bytes, want %d: snapshot is corrupt", j.index, len(data), len(j.buf))
		}
		parent = data
	}
	pos := 0
	for _, p := range j.pieces {
		copy(j.buf[pos:p[0]], parent[pos:p[0]])
		pos = p[1]
	}
	copy(j.buf[pos:], parent[pos:])
	return nil
}

func readErr(err error, at, size int64) error {
	if err == nil {
		return fmt.Errorf("short read at %d", at)
	}
	if at < size && errors.Is(err, io.EOF) {
		return fmt.Errorf("the source ended at %d bytes, %d expected", at, size)
	}
	return err
}

// saveSourcePatch stores j's block as a patch of its parent's block when gather named one that
// is still a whole blob and few enough sub-blocks changed; it reports whether it stored it.
func (b *diskBackup) saveSourcePatch(ctx context.Context, j blockJob, r blockResult) (bool, error) {
	if j.patchBase.IsZero() || !worthPatching(j.changed, len(j.buf), b.subSize) || !b.ps.IsFullBlob(j.patchBase) {
		return false, nil
	}
	return true, b.storePatch(ctx, j, r.id, j.patchBase, j.changed)
}
