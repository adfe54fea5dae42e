package repo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/snapferry/snapferry/images/progress"
	"github.com/snapferry/snapferry/images/store"
)

// RepairOptions tune Repair.
type RepairOptions struct {
	// DryRun reads and reports, changes nothing.
	DryRun bool
	// Progress hears about the bytes of packs read; nil for none.
	Progress progress.Reporter
}

// RepairReport says what Repair found and did (or would do, for a dry run).
type RepairReport struct {
	PacksRead int `json:"packs_read"`
	// DamagedPacks held at least one blob that did not verify, or are missing, or have a header
	// that cannot be read: their good blobs were copied to new packs and they were deleted.
	DamagedPacks  []ID `json:"damaged_packs,omitempty"`
	BlobsSalvaged int  `json:"blobs_salvaged"`
	PacksWritten  int  `json:"packs_written"`
	// LostBlobs had no copy that verifies: they are out of the index now, so the next backup of
	// the same data stores them again.
	LostBlobs []ID `json:"lost_blobs,omitempty"`
	// DamagedSnapshots still need a lost blob. A backup that stores the same data again mends
	// them (blobs are named by their content); otherwise restore what is left of them, or
	// forget them.
	DamagedSnapshots []ID `json:"damaged_snapshots,omitempty"`
	IndexFilesOld    int  `json:"index_files_old"`
	IndexFilesNew    int  `json:"index_files_new"`
}

// Repair takes damaged blobs out of the index, the way `restic repair packs` and `borg check
// --repair` do: under an exclusive lock it reads every indexed pack (as check --read-data does)
// and rebuilds every patch; for each pack with a bad blob it copies the blobs that verify into
// new packs, writes an index without the damaged packs, then deletes them. A blob with no copy
// left is no longer in the index, so backups store it again instead of deduplicating against a
// damaged copy; the report names the snapshots that still need such a blob.
func (r *Repository) Repair(ctx context.Context, o RepairOptions) (*RepairReport, error) {
	unlock, err := r.beginMaintenance(ctx, true, "repair")
	if err != nil {
		return nil, err
	}
	defer unlock()
	rep, err := r.repair(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("repair: %w", err)
	}
	return rep, nil
}

// repair is Repair's work under the lock: find the damage, salvage what verifies, name what is
// lost, then commit an index without the damaged packs (replaceIndex deletes them last).
func (r *Repository) repair(ctx context.Context, o RepairOptions) (*RepairReport, error) {
	if err := r.loadIndex(ctx, true); err != nil {
		return nil, err
	}
	r.mu.Lock()
	idx := r.idx
	r.mu.Unlock()
	rep := &RepairReport{}
	// Tombstone files go with the other old index files: under the exclusive lock no writer
	// holds a dropped pack, so the packs they mark become plain leftovers for the next prune.
	plans, oldIndex, _, err := r.planPacks(ctx, make([]uint64, (len(idx.base)+63)/64), nil)
	if err != nil {
		return nil, err
	}
	rep.IndexFilesOld = len(oldIndex)
	bad, err := r.findDamage(ctx, plans, progress.OrNop(o.Progress), rep)
	if err != nil {
		return nil, err
	}
	keep, damaged, lost := planSalvage(plans, bad, rep)
	newPacks, err := r.salvage(ctx, damaged, lost, o, rep)
	if err != nil {
		return nil, err
	}
	rep.LostBlobs = sortedIDs(lost)
	if rep.DamagedSnapshots, err = r.snapshotsNeeding(ctx, lost); err != nil {
		return nil, err
	}
	// Marks of an earlier check on copies that read well now are cleared by the new index too.
	marked := slices.ContainsFunc(keep, func(p *packPlan) bool {
		return slices.ContainsFunc(p.blobs, func(b packBlob) bool { return b.Flags&blobFlagDamaged != 0 })
	})
	if o.DryRun || (len(damaged) == 0 && !marked) {
		return rep, nil
	}
	final := newPacks
	for _, p := range keep {
		blobs := slices.Clone(p.blobs)
		for i := range blobs {
			blobs[i].Flags &^= blobFlagDamaged // read and verified just now
		}
		final = append(final, indexedPack{ID: p.id, Blobs: blobs})
	}
	if _, rep.IndexFilesNew, err = r.replaceIndex(ctx, final, oldIndex, damaged, nil); err != nil {
		return nil, err
	}
	return rep, nil
}

// planSalvage sorts the packs into kept and damaged ones (those with a bad blob) and decides
// what survives: every copy in a kept pack, and every good copy of a damaged pack that no kept
// pack holds (marked used, for repack). It returns the blobs left with no good copy.
func planSalvage(plans []*packPlan, bad map[ID]map[uint32]bool, rep *RepairReport) (keep, damaged []*packPlan, lost map[ID]bool) {
	for _, p := range plans {
		if _, ok := bad[p.id]; ok {
			damaged = append(damaged, p)
			rep.DamagedPacks = append(rep.DamagedPacks, p.id)
		} else {
			keep = append(keep, p)
		}
	}
	intact := map[ID]bool{}
	for _, p := range keep {
		for _, b := range p.blobs {
			intact[b.ID] = true
		}
	}
	for _, p := range damaged {
		p.used = make([]bool, len(p.blobs))
		for i, b := range p.blobs {
			if !bad[p.id][b.Offset] && !intact[b.ID] {
				p.used[i] = true
			}
		}
	}
	lost = map[ID]bool{}
	for _, p := range damaged {
		for i, b := range p.blobs {
			if !p.used[i] && !intact[b.ID] {
				lost[b.ID] = true
			}
		}
	}
	return keep, damaged, lost
}

// salvage copies the good blobs of the damaged packs into new packs (not on a dry run) and
// counts them. A blob found bad only now (a patch whose base went) joins lost; one the new
// packs hold leaves it.
func (r *Repository) salvage(ctx context.Context, damaged []*packPlan, lost map[ID]bool, o RepairOptions,
	rep *RepairReport) ([]indexedPack, error) {
	var newPacks []indexedPack
	if !o.DryRun && len(damaged) > 0 {
		var mu sync.Mutex
		var err error
		newPacks, _, err = r.repack(ctx, damaged, progress.OrNop(o.Progress), func(_ ID, b packBlob, _ error) {
			mu.Lock()
			lost[b.ID] = true // found bad only now (a patch whose base went): not salvaged
			mu.Unlock()
		})
		if err != nil {
			return nil, err
		}
		rep.PacksWritten = len(newPacks)
	}
	for _, p := range damaged {
		for i, b := range p.blobs {
			if p.used[i] && !lost[b.ID] {
				rep.BlobsSalvaged++
			}
		}
	}
	for _, np := range newPacks {
		for _, b := range np.Blobs {
			delete(lost, b.ID)
		}
	}
	return newPacks, nil
}

// noOffset marks a pack damaged as a whole (no blob sits there).
const noOffset = ^uint32(0)

// findDamage reads every pack of plans and rebuilds every patch. It returns, per damaged pack,
// the offsets of its bad blobs (every blob for a missing pack or an unreadable header).
func (r *Repository) findDamage(ctx context.Context, plans []*packPlan, prog progress.Reporter, rep *RepairReport) (map[ID]map[uint32]bool, error) {
	bad := map[ID]map[uint32]bool{}
	var mu sync.Mutex
	markBad := func(pack ID, off uint32) {
		mu.Lock()
		defer mu.Unlock()
		if bad[pack] == nil {
			bad[pack] = map[uint32]bool{}
		}
		bad[pack][off] = true
	}
	var total int64
	for _, p := range plans {
		total += p.size
	}
	prog.Start("read packs", total)
	err := forEachParallel(ctx, storeWorkers, len(plans), func(ctx context.Context, i int) error {
		p := plans[i]
		defer prog.Add(p.size)
		fi, err := r.be.Stat(ctx, store.Handle{Kind: store.KindData, Name: p.id.String()})
		if err == nil {
			var blobs []packBlob
			_, _, blobs, err = r.readPack(ctx, p.id, fi.Size, p.blobs)
			if err != nil && blobs != nil {
				for _, b := range blobs {
					markBad(p.id, b.Offset)
				}
				err = nil
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, store.ErrNotExist):
			for _, b := range p.blobs {
				markBad(p.id, b.Offset)
			}
			markBad(p.id, noOffset)
		case isDamage(err):
			// The header is unreadable or disagrees with the index: the pack is damaged, and
			// the salvage reads each blob where the index says and keeps what verifies.
			markBad(p.id, noOffset)
		default:
			return fmt.Errorf("read pack %s: %w", p.id.Short(), err)
		}
		mu.Lock()
		rep.PacksRead++
		mu.Unlock()
		return ctx.Err()
	})
	prog.Done()
	if err != nil {
		return nil, err
	}
	// Patches verify only together with their base: rebuild every patch copy that read well.
	r.mu.Lock()
	idx := r.idx
	r.mu.Unlock()
	for _, p := range plans {
		num := idx.packNum[p.id]
		for _, b := range p.blobs {
			if b.Flags&blobFlagPatch == 0 || bad[p.id][b.Offset] {
				continue
			}
			e := entryOf(num, b)
			if _, err := r.loadCopy(ctx, DataBlob, b.ID, e, p.id, nil); err != nil {
				if !isDamage(err) {
					return nil, fmt.Errorf("rebuild patch %s: %w", b.ID.Short(), err)
				}
				markBad(p.id, b.Offset)
			}
		}
	}
	return bad, nil
}

// snapshotsNeeding returns the snapshots that reference a blob in lost or one not indexed, or
// whose trees cannot be read.
func (r *Repository) snapshotsNeeding(ctx context.Context, lost map[ID]bool) ([]ID, error) {
	snaps, err := listIDs(ctx, r.be, store.KindSnapshots)
	if err != nil {
		return nil, err
	}
	var out []ID
	for _, sid := range snaps {
		seen := map[ID]struct{}{} // per snapshot: a shared tree's blobs count for each
		sn, err := r.loadListedSnapshot(ctx, sid)
		if sn == nil && err == nil {
			continue
		}
		if err != nil {
			if errors.Is(err, ErrCorrupt) {
				out = append(out, sid)
				continue
			}
			return nil, err
		}
		hurt := false
		err = r.walkSnapshot(ctx, sn, seen, refVisitor{
			blob: func(_ BlobType, id ID) {
				if lost[id] || !r.hasCopy(id) {
					hurt = true
				}
			},
			fail: func(string, ID, error) { hurt = true },
		})
		if err != nil {
			return nil, err
		}
		if hurt {
			out = append(out, sid)
		}
	}
	return out, nil
}

// hasCopy reports whether the index names any copy of id, damaged or not.
func (r *Repository) hasCopy(id ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.idx.lookup(id)
	return ok
}
