package repo

import (
	"context"
	"fmt"
	"io"

	"github.com/snapferry/snapferry/images/progress"
	"github.com/snapferry/snapferry/images/store"
)

// repack copies the used blobs of the given packs into new packs, verifying each blob on the way
// (stored bytes are copied as they are: no recompression; a patch is rebuilt from its base and
// checked against its id, and keeps its flags in the new pack and index). It returns the new packs and their
// total size.
//
// skipBad, if set, hears about a used blob that does not verify, which is then left out
// (repair salvages the rest of a damaged pack); nil stops the repack at the first one.
func (r *Repository) repack(ctx context.Context, plans []*packPlan, prog progress.Reporter,
	skipBad func(pack ID, b packBlob, err error)) ([]indexedPack, int64, error) {
	var total int64
	for _, p := range plans {
		total += p.size
	}
	prog.Start("repack", total)
	defer prog.Done()
	rp := &repacker{r: r, skipBad: skipBad}
	defer rp.abandon()
	for _, plan := range plans {
		if err := rp.copyUsed(ctx, plan); err != nil {
			return nil, 0, err
		}
		prog.Add(plan.size)
	}
	if err := rp.flush(ctx); err != nil {
		return nil, 0, fmt.Errorf("repack: %w", err)
	}
	return rp.out, rp.written, nil
}

// repacker is repack's state across packs: the new pack being filled, the packs stored so far,
// and buffers reused for every blob.
type repacker struct {
	r       *Repository
	skipBad func(pack ID, b packBlob, err error)

	// p holds the new packs being filled, one per blob type (packIndex): a repack keeps tree
	// blobs apart from data blobs as SaveBlob does, and sorts those of old mixed packs apart.
	// Each is nil until a blob needs one, and after each flush.
	p       [2]*packer
	out     []indexedPack
	written int64

	stored, plain, rebuilt []byte
}

// copyUsed reads pack plan once, front to back, and copies its used blobs into new packs.
func (rp *repacker) copyUsed(ctx context.Context, plan *packPlan) error {
	rd, err := rp.r.be.Load(ctx, store.Handle{Kind: store.KindData, Name: plan.id.String()}, 0, 0)
	if err != nil {
		return fmt.Errorf("repack pack %s: %w", plan.id.Short(), err)
	}
	defer rd.Close()
	var pos int64
	for i, b := range plan.blobs {
		if !plan.used[i] {
			continue
		}
		if _, err := io.CopyN(io.Discard, rd, int64(b.Offset)-pos); err != nil {
			return fmt.Errorf("repack pack %s: %w", plan.id.Short(), err)
		}
		rp.stored = grow(rp.stored, int(b.Stored))
		if _, err := io.ReadFull(rd, rp.stored); err != nil {
			return fmt.Errorf("repack pack %s: read blob %s: %w", plan.id.Short(), b.ID.Short(), err)
		}
		pos = int64(b.Offset) + int64(b.Stored)
		if err := rp.copyBlob(ctx, plan.id, b); err != nil {
			return err
		}
	}
	return nil
}

// copyBlob verifies blob b of pack, whose stored bytes were just read into rp.stored, and adds
// them to the new pack, which is stored when full. A blob that does not verify stops the repack
// unless skipBad takes it.
func (rp *repacker) copyBlob(ctx context.Context, pack ID, b packBlob) error {
	r := rp.r
	e := b.packEntry
	e.Flags &^= blobFlagDamaged // an index mark, never in a pack header
	var err error
	if rp.plain, err = r.decodeBlob(e, rp.stored, rp.plain); err == nil && b.Flags&blobFlagPatch != 0 {
		rp.rebuilt, err = r.rebuildPatch(ctx, b.ID, rp.plain, rp.rebuilt)
	}
	if err != nil && rp.skipBad != nil && isDamage(err) {
		rp.skipBad(pack, b, err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("repack pack %s: blob %s: %w; nothing was deleted (run `snapferry check --read-data`, then `snapferry repair`)",
			pack.Short(), b.ID.Short(), err)
	}
	k := packIndex(e.Type)
	if rp.p[k] == nil {
		if rp.p[k], err = newPackerFor(ctx, r.be, r.opts.TempDir, &r.noStream); err != nil {
			return fmt.Errorf("repack: %w", err)
		}
	}
	if err := rp.p[k].add(e, rp.stored); err != nil {
		return fmt.Errorf("repack: %w", err)
	}
	if r.packFull(rp.p[k]) {
		if err := rp.flushOne(ctx, k); err != nil {
			return fmt.Errorf("repack: %w", err)
		}
	}
	return nil
}

// flush stores the packs being filled, if any.
func (rp *repacker) flush(ctx context.Context) error {
	for k := range rp.p {
		if err := rp.flushOne(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// flushOne stores the pack rp.p[k], if any.
func (rp *repacker) flushOne(ctx context.Context, k int) error {
	if rp.p[k] == nil {
		return nil
	}
	id, blobs, size, err := rp.r.storePack(ctx, rp.p[k])
	rp.p[k] = nil
	if err != nil {
		return err
	}
	rp.out = append(rp.out, indexedPack{ID: id, Blobs: blobs})
	rp.written += size
	return nil
}

// abandon drops a pack left half filled by an error.
func (rp *repacker) abandon() {
	for _, p := range rp.p {
		if p != nil {
			p.close()
		}
	}
}
