package repo

import (
	"context"
	"crypto/rand"
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
	var old *index
	stale, err := r.indexFilesGone(ctx, func() { old = r.idx })
	if err != nil || !stale {
		return err
	}
	if err := r.loadIndex(ctx, false); err != nil {
		return err
	}
	return r.indexAgainFor(ctx, sn, old)
}

// rescueNewSnapshots runs in prune after its new index replaced the old files: snapshots that
// backups committed since prune listed them (known) may name blobs in packs prune just took out
// of the index (no snapshot it knew needed them). Their packs are indexed again, so they are
// neither marked dropped nor deleted. A backup that commits after this looks still finds its
// loaded index files gone and does the same (recheckIndex runs again after the snapshot is
// written).
func (r *Repository) rescueNewSnapshots(ctx context.Context, before *index, known []ID) error {
	seen := make(map[ID]bool, len(known))
	for _, id := range known {
		seen[id] = true
	}
	now, err := listIDs(ctx, r.be, store.KindSnapshots)
	if err != nil {
		return err
	}
	var added []ID
	for _, sid := range now {
		if !seen[sid] {
			added = append(added, sid)
		}
	}
	if len(added) == 0 {
		return nil
	}
	// A backup writes its index file before its snapshot: one that wrote both after prune last
	// loaded the index (at the end of replaceIndex) has blobs only that file names. Loading the
	// index again now, after the listing, finds every blob the snapshots listed above need.
	if err := r.loadIndex(ctx, true); err != nil {
		return err
	}
	for _, sid := range added {
		sn, err := r.loadListedSnapshot(ctx, sid)
		if err != nil {
			return err
		}
		if sn == nil {
			continue
		}
		if err := r.indexAgainFor(ctx, sn, before); err != nil {
			return fmt.Errorf("snapshot %s, committed during the prune: %w", sid.Short(), err)
		}
	}
	return nil
}

// indexAgainFor makes every blob sn names findable in the current index: a blob that only old
// (an earlier state of the index) knows has its pack indexed again from the pack's header. It
// fails if such a pack is gone or a blob is in neither.
func (r *Repository) indexAgainFor(ctx context.Context, sn *Snapshot, old *index) error {
	// Trees name deeper blobs: a tree whose pack is indexed again is read in the next round.
	for round := 0; ; round++ {
		need, lost, err := r.packsToIndexAgain(ctx, sn, old)
		if err != nil {
			return err
		}
		if len(need) == 0 || round > 64 {
			if lost != nil {
				return fmt.Errorf("a prune ran meanwhile and %w; run the job again (nothing stored is lost)", lost)
			}
			return nil
		}
		if err := r.indexPacksAgain(ctx, need); err != nil {
			return err
		}
	}
}

// packsToIndexAgain walks sn and returns the packs, known to old only, that hold blobs it needs
// (and the bases of its patches), and lost: the first blob neither index knows. The error is for
// a walk that could not run.
func (r *Repository) packsToIndexAgain(ctx context.Context, sn *Snapshot, old *index) (need map[ID]bool, lost error, err error) {
	need = map[ID]bool{}
	var patches []ID
	err = r.walkSnapshot(ctx, sn, map[ID]struct{}{}, refVisitor{
		blob: func(t BlobType, id ID) {
			if r.hasCopy(id) {
				if t == DataBlob && r.isPatch(id) {
					patches = append(patches, id)
				}
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
		return nil, nil, err
	}
	// A patch needs its base, which the snapshot does not name: the base may be a block of
	// a snapshot forgotten meanwhile, in a pack the prune dropped.
	for _, id := range patches {
		base, err := r.patchBase(ctx, id)
		if err != nil {
			if lost == nil {
				lost = fmt.Errorf("patch blob %s: %w", id.Short(), err)
			}
			continue
		}
		if r.hasCopy(base) {
			continue
		}
		if e, ok := old.lookup(base); ok && e.pack != pendingPack {
			need[old.packs[e.pack]] = true
		} else if lost == nil {
			lost = fmt.Errorf("base blob %s of patch %s: %w", base.Short(), id.Short(), ErrBlobNotFound)
		}
	}
	return need, lost, nil
}

// indexPacksAgain writes an index file for the packs in need, from their own headers, and loads
// the index again. A pack that is gone fails: a prune deleted it.
func (r *Repository) indexPacksAgain(ctx context.Context, need map[ID]bool) error {
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
	// Plus an entry without blobs for a random pack id (a tombstone of nothing): files are
	// named by their content, and a file naming exactly these packs may be one a running
	// prune loaded and is about to remove as old. The nonce makes this one new.
	var nonce ID
	if _, err := rand.Read(nonce[:]); err != nil {
		return err
	}
	if _, err := r.saveIndexFile(ctx, append(packs, indexedPack{ID: nonce})); err != nil {
		return err
	}
	return r.loadIndex(ctx, false)
}

// isPatch reports whether the copy of id that lookups give is a patch.
func (r *Repository) isPatch(id ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.idx.lookup(id)
	return ok && e.comp&compPatch != 0
}
