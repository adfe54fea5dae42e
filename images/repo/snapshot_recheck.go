package repo

import (
	"context"
	"errors"
	"fmt"

	"github.com/snapferry/snapferry/images/store"
)

// recheckIndex runs before a snapshot is committed. If a prune ran while this run worked (an
// index file this value loaded is gone), the index is loaded again and every blob the snapshot
// names must still be in it. A blob this run deduplicated against whose pack the prune dropped
// (no snapshot needed it then) is still on disk, because prune does not delete a pack a live
// writer may use (prune_leftovers.go): its pack is indexed again from its own header. Only if
// the pack is gone (this run's lock was lost, or a prune's proof failed) does the commit fail,
// before the snapshot is written: nothing stored is lost, and the next run stores the data again.
func (r *Repository) recheckIndex(ctx context.Context, sn *Snapshot) error {
	current, err := listIDs(ctx, r.be, store.KindIndex)
	if err != nil {
		return err
	}
	present := make(map[ID]bool, len(current))
	for _, id := range current {
		present[id] = true
	}
	r.mu.Lock()
	old := r.idx
	stale := false
	for _, id := range r.indexFiles {
		stale = stale || !present[id]
	}
	r.mu.Unlock()
	if !stale {
		return nil
	}
	if err := r.loadIndex(ctx, false); err != nil {
		return err
	}
	// Trees name deeper blobs: a tree whose pack is indexed again is read in the next round.
	for round := 0; ; round++ {
		need := map[ID]bool{}
		var lost error
		err := r.walkSnapshot(ctx, sn, map[ID]struct{}{}, refVisitor{
			blob: func(t BlobType, id ID) {
				if r.hasCopy(id) {
					return
				}
				e, ok := old.lookup(id)
				if !ok || e.pack == pendingPack {
					if lost == nil {
						lost = fmt.Errorf("%s blob %s: %w", t, id.Short(), ErrBlobNotFound)
					}
					return
				}
				need[old.packs[e.pack]] = true
			},
			fail: func(what string, id ID, err error) {
				if r.hasCopy(id) && lost == nil && !errors.Is(err, ErrBlobNotFound) {
					lost = fmt.Errorf("%s (%s): %w", what, id.Short(), err)
				}
			},
		})
		if err != nil {
			return err
		}
		if len(need) == 0 || round > 64 {
			if lost != nil {
				return fmt.Errorf("a prune ran meanwhile and %w; run the job again (nothing stored is lost)", lost)
			}
			return nil
		}
		var packs []indexedPack
		for _, id := range sortedIDs(need) {
			fi, err := r.be.Stat(ctx, store.Handle{Kind: store.KindData, Name: id.String()})
			if errors.Is(err, store.ErrNotExist) {
				return fmt.Errorf("pack %s, which this run deduplicated against, was deleted by a prune that ran meanwhile; "+
					"run the job again (nothing stored is lost)", id.Short())
			}
			if err != nil {
				return err
			}
			blobs, err := readPackHeader(ctx, r.be, id, fi.Size, r.crypt)
			if err != nil {
				return fmt.Errorf("index pack %s again: %w", id.Short(), err)
			}
			packs = append(packs, indexedPack{ID: id, Blobs: blobs})
		}
		if _, err := r.saveIndexFile(ctx, packs); err != nil {
			return err
		}
		if err := r.loadIndex(ctx, false); err != nil {
			return err
		}
	}
}
