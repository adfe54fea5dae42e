package repo

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/snapferry/snapferry/images/store"
)

// Leftovers are packs that no index names and temp files of interrupted uploads. Prune may
// delete one only when it can prove that no writer uses it, which it judges by the locks every
// writer holds (backups, check, prune itself) rather than by age alone:
//
//   - A writer takes its lock before it writes anything and reloads the index at that moment if
//     a prune removed index files meanwhile (Lock, syncIndex). So a pack that left the index at
//     time T (a prune dropped it, and marked it with a tombstone written after the old index
//     files were gone) can be in the index of a live writer only if that writer's lock was
//     created before T; and a pack or temp file last written at time M by a writer that died
//     belongs to a lock created before M.
//   - Temp files also need to be older than lockSkew: a writer's lock file is itself written
//     through a temp file, before the lock can be seen.
//   - The writers' horizon is the creation time of the oldest live lock other than prune's own
//     (stale locks do not count), moved to the store's clock with the offset between our clock
//     and the store's (our own lock file's mtime) and less lockSkew for other hosts' clocks.
//     Anything that left the index, or was last written, before the horizon is no writer's: it
//     is deleted at once, with no age limit (PruneOptions.KeepUnindexed adds one). With no other
//     live lock there is no horizon: everything unindexed goes.
//   - A backup that deduplicated against a blob in a pack a prune then dropped still finds the
//     pack when it commits (its lock is older than the tombstone) and indexes it again
//     (snapshot_recheck.go); a backup whose lock was lost fails instead of committing.
//
// Tombstones are index-file entries that name a pack with no blobs. Prune writes them into
// files of their own and keeps such a file, whose modification time is T, until its packs are
// gone.

// lockSkew allows for other hosts' clocks being ahead of ours when comparing their lock times.
const lockSkew = 2 * time.Minute

// tombstones are the index files that mark dropped packs, by file.
type tombstones struct {
	files map[ID][]ID
}

// leftover is a pack in no index: dropped by a prune (since = the tombstone's time) or left by a
// writer (since = its modification time). since is zero when the store cannot tell.
type leftover struct {
	id      ID
	size    int64
	since   time.Time
	dropped bool
}

// leftovers are the unindexed packs prune found, and the tombstone files naming them.
type leftovers struct {
	packs     []leftover
	tombFiles map[ID][]ID
}

// horizon is writerHorizon's answer: the store's time now, and the time before which no live
// writer can have written or loaded anything (none: no other live writer at all).
type horizon struct {
	storeNow time.Time
	limit    time.Time
	none     bool
}

// findLeftovers lists the packs that no plan (no index file prune loaded) names, with the time
// each left the index.
func (r *Repository) findLeftovers(ctx context.Context, plans []*packPlan, tombs *tombstones) (*leftovers, error) {
	indexed := make(map[ID]bool, len(plans))
	for _, p := range plans {
		indexed[p.id] = true
	}
	files, err := listIndexFiles(ctx, r.be)
	if err != nil {
		return nil, err
	}
	mtime := map[ID]time.Time{}
	for _, f := range files {
		mtime[f.ID] = f.ModTime
	}
	droppedAt := map[ID]time.Time{}
	for file, packs := range tombs.files {
		for _, p := range packs {
			if t := mtime[file]; t.After(droppedAt[p]) || droppedAt[p].IsZero() {
				droppedAt[p] = t
			}
		}
	}
	lo := &leftovers{tombFiles: tombs.files}
	err = r.be.List(ctx, store.KindData, func(fi store.FileInfo) error {
		id, err := ParseID(fi.Name)
		if err != nil || indexed[id] {
			return nil
		}
		l := leftover{id: id, size: fi.Size, since: fi.ModTime}
		if t, ok := droppedAt[id]; ok {
			l.since, l.dropped = t, true
		}
		lo.packs = append(lo.packs, l)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list packs in %s: %w", r.be.Location(), err)
	}
	return lo, nil
}

// writerHorizon reads the live locks (own is prune's lock, which does not count).
func (r *Repository) writerHorizon(ctx context.Context, own *Lock) (horizon, error) {
	locks, err := r.ListLocks(ctx)
	if err != nil {
		return horizon{}, err
	}
	now := r.opts.Clock.Now()
	h := horizon{storeNow: now, none: true}
	var offset time.Duration // store clock minus ours
	own.mu.Lock()
	ownName, ownInfo := own.name, own.info
	own.mu.Unlock()
	if l, ok := findLock(locks, ownName); ok && !l.ModTime.IsZero() {
		offset = l.ModTime.Sub(ownInfo.Time)
		h.storeNow = now.Add(offset)
	}
	host, _ := r.hostname()
	for _, l := range locks {
		if l.ID == ownName || l.staleReason(now, h.storeNow, host, r.opts.LockStale) != "" {
			continue
		}
		created := l.Info.Created.Add(offset).Add(-lockSkew)
		if l.Info.Created.IsZero() { // a damaged lock file: its mtime is all we know
			created = l.ModTime.Add(-r.opts.LockStale)
		}
		if h.none || created.Before(h.limit) {
			h.limit = created
		}
		h.none = false
	}
	return h, nil
}

func (r *Repository) storeNow(h horizon) time.Time { return h.storeNow }

// free reports whether something that left the index (or was last written) at since is no
// live writer's and older than keep.
func (h horizon) free(since time.Time, keep time.Duration) bool {
	if since.IsZero() {
		return h.none && keep == 0 // the store cannot tell: only when nobody writes
	}
	if keep > 0 && h.storeNow.Sub(since) < keep { // (file times are coarse: compare only when asked to)
		return false
	}
	return h.none || since.Before(h.limit)
}

// tempBefore is the time before which temp files are no live writer's. A writer's first temp
// file is its lock file's, written before any lock of it can be seen: temp files younger than
// lockSkew are spared whatever the locks say.
func (h horizon) tempBefore(keep time.Duration) time.Time {
	t := h.storeNow.Add(-max(keep, lockSkew))
	if !h.none && h.limit.Before(t) {
		t = h.limit
	}
	return t
}

// judgeLeftovers fills the report of a dry run.
func (r *Repository) judgeLeftovers(lo *leftovers, h horizon, keep time.Duration, rep *PruneReport) {
	rep.PacksDeleted = 0
	for _, l := range lo.packs {
		if h.free(l.since, keep) {
			rep.PacksDeleted++
			rep.BytesFreed += l.size
			if !l.dropped {
				rep.UnindexedDeleted++
			}
		} else {
			rep.PacksDeferred++
		}
	}
}

// cleanTemp removes temp files that no live writer can still be writing, and lets a store with
// other kinds of leftovers (store.Cleaner: object stores) remove those.
func (r *Repository) cleanTemp(ctx context.Context, h horizon, keep time.Duration) (int, int64, error) {
	n := 0
	if c, ok := r.be.(store.Cleaner); ok {
		var err error
		if n, err = c.Cleanup(ctx); err != nil {
			return n, 0, err
		}
	}
	c, ok := r.be.(store.TempCleaner)
	if !ok {
		return n, 0, nil
	}
	rep, err := c.CleanTemp(ctx, h.tempBefore(keep))
	return n + rep.Removed, rep.BytesRemoved, err
}

// TempFiles counts the temp files of interrupted uploads (zero where the store cannot tell).
func (r *Repository) TempFiles(ctx context.Context) (store.TempReport, error) {
	c, ok := r.be.(store.TempCleaner)
	if !ok {
		return store.TempReport{}, nil
	}
	return c.CleanTemp(ctx, time.Time{})
}

// markDropped writes the tombstone file for packs this prune took out of the index, after the
// old index files are gone: its modification time is when they left the index.
func (r *Repository) markDropped(ctx context.Context, dropped []ID, lo *leftovers) error {
	if len(dropped) == 0 {
		return nil
	}
	marks := make([]indexedPack, len(dropped))
	for i, id := range dropped {
		marks[i] = indexedPack{ID: id}
	}
	file, err := r.saveIndexFile(ctx, marks)
	if err != nil {
		return err
	}
	fi, err := r.be.Stat(ctx, store.Handle{Kind: store.KindIndex, Name: file.String()})
	if err != nil {
		return fmt.Errorf("mark dropped packs: %w", err)
	}
	lo.tombFiles[file] = dropped
	for i := range lo.packs {
		if lo.packs[i].dropped && slices.Contains(dropped, lo.packs[i].id) {
			lo.packs[i].since = fi.ModTime
		}
	}
	return nil
}

// deleteLeftovers deletes the leftovers that no index file names now (all are read again: a
// backup may have indexed a pack again, possibly in a file whose name equals one prune loaded
// and removed, since files are named by their content) and that are free of writers, then the
// tombstone files whose packs are all gone.
func (r *Repository) deleteLeftovers(ctx context.Context, lo *leftovers, h horizon, keep time.Duration,
	rep *PruneReport) error {
	named := map[ID]bool{}
	err := r.forEachIndexFile(ctx, func(_ ID, p indexedPack) error {
		if len(p.Blobs) > 0 {
			named[p.ID] = true
		}
		return nil
	}, nil, func(ID, error) {}, nil)
	if err != nil {
		return err
	}
	rep.PacksDeleted, rep.PacksDeferred = 0, 0
	pending := map[ID]bool{}
	for _, l := range lo.packs {
		switch {
		case named[l.id]:
		case h.free(l.since, keep):
			if err := r.removeFile(ctx, store.KindData, l.id); err != nil {
				return err
			}
			rep.PacksDeleted++
			rep.BytesFreed += l.size
			if !l.dropped {
				rep.UnindexedDeleted++
			}
		default:
			rep.PacksDeferred++
			if l.dropped {
				pending[l.id] = true
			}
		}
	}
	for file, packs := range lo.tombFiles {
		if !slices.ContainsFunc(packs, func(id ID) bool { return pending[id] }) {
			if err := r.removeFile(ctx, store.KindIndex, file); err != nil {
				return err
			}
		}
	}
	return nil
}
