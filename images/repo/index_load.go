package repo

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/snapferry/snapferry/images/store"
)

// loadIndex reads every index file into a fresh in-memory index. Strict mode fails on a damaged
// index file; prune needs that, because packs of a skipped file would look unreferenced. Open is
// lenient: a backup that misses an index file only stores some blobs again, and check must be
// able to open the repository to report the damage. Skipped files are kept in indexSkipped.
//
// An index file that vanishes between listing and reading was replaced by a prune running
// beside us (prune writes the new files before it removes the old): the load starts over.
func (r *Repository) loadIndex(ctx context.Context, strict bool) error {
	return r.loadIndexListed(ctx, strict, nil)
}

// loadIndexListed is loadIndex whose first attempt uses listed, the index files as
// listIndexFiles returned them (Open lists them while it reads the config); nil lists them.
func (r *Repository) loadIndexListed(ctx context.Context, strict bool, listed []idFile) error {
	var err error
	for range 10 {
		if err = r.loadIndexOnce(ctx, strict, listed); !errors.Is(err, store.ErrNotExist) {
			return err
		}
		listed = nil
	}
	return err
}

func (r *Repository) loadIndexOnce(ctx context.Context, strict bool, listed []idFile) error {
	idx := newIndex()
	if !strict && r.opts.TempDir != "" {
		// A lenient load is what backups and restores work with: full records go to a spill
		// file, 4 bytes per loaded blob stay in memory (index_spill_base.go), 8 per blob this
		// run adds (index_spill.go).
		idx.spill = newSpillFile(r.opts.TempDir)
		idx.closeSpill()
	}
	var files []ID
	var skipped []error
	var onDamage func(ID, error)
	if !strict {
		onDamage = func(_ ID, err error) { skipped = append(skipped, err) }
	}
	if listed == nil {
		var err error
		if listed, err = listIndexFiles(ctx, r.be); err != nil {
			return err
		}
	}
	err := r.forEachListedIndexFile(ctx, listed, func(id ID, p indexedPack) error {
		if len(p.Blobs) > 0 {
			idx.appendBase(p.ID, p.Blobs)
		} else { // a tombstone of a dropped pack (prune_leftovers.go)
			idx.dropped[p.ID] = true
		}
		return nil
	}, func(id ID) { files = append(files, id) }, onDamage, idx.reserve)
	if err != nil {
		return err
	}
	idx.sortBase()
	r.mu.Lock()
	r.idx = idx
	r.indexFiles = files
	r.indexSkipped = skipped
	r.mu.Unlock()
	return nil
}

// IndexProblems returns the damaged index files Open skipped (check reports them too).
func (r *Repository) IndexProblems() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.indexSkipped...)
}

// forEachIndexFile decodes every index file, calling fn per pack entry and done per file. A
// damaged file (ErrCorrupt) goes to onDamage, or ends the walk with an error if onDamage is nil.
// sizeHint, if set, first learns the total size of all index files.
func (r *Repository) forEachIndexFile(ctx context.Context, fn func(file ID, p indexedPack) error, done func(ID),
	onDamage func(ID, error), sizeHint func(int64)) error {
	files, err := listIndexFiles(ctx, r.be)
	if err != nil {
		return err
	}
	return r.forEachListedIndexFile(ctx, files, fn, done, onDamage, sizeHint)
}

// forEachListedIndexFile is forEachIndexFile over files as listIndexFiles returned them.
func (r *Repository) forEachListedIndexFile(ctx context.Context, files []idFile, fn func(file ID, p indexedPack) error,
	done func(ID), onDamage func(ID, error), sizeHint func(int64)) error {
	if sizeHint != nil {
		var total int64
		for _, f := range files {
			total += f.Size
		}
		sizeHint(total)
	}
	// Loaded ahead over the link, used in the listing's order (see listIndexFiles).
	return forEachInOrder(ctx, indexFilesAhead(files), len(files), func(ctx context.Context, i int) ([]byte, error) {
		return loadFileSized(ctx, r.be, store.Handle{Kind: store.KindIndex, Name: files[i].ID.String()}, r.crypt, files[i].Size)
	}, func(i int, b []byte, err error) error {
		id := files[i].ID
		if err == nil {
			err = decodeIndexFile(b, func(p indexedPack) error { return fn(id, p) })
		}
		if err != nil {
			err = fmt.Errorf("load index file %s: %w (run `snapferry check`; `rebuild-index` repairs it)", id.Short(), err)
			if onDamage == nil || !errors.Is(err, ErrCorrupt) {
				return err
			}
			onDamage(id, err)
			return nil
		}
		if done != nil {
			done(id)
		}
		return nil
	})
}

// indexAheadBytes bounds the index files read ahead by their size: a backup writes one every
// Options.IndexEveryBlobs blobs (~800 KB), and eight of them at once were the peak of a second
// backup of 500 000 files (7.4 MB of file buffers beside the index being built).
const indexAheadBytes = 3 << 20

// indexFilesAhead is how many index files to read ahead: storeAhead, fewer when they are big.
func indexFilesAhead(files []idFile) int {
	var total int64
	for _, f := range files {
		total += f.Size
	}
	if len(files) == 0 || total == 0 {
		return storeAhead
	}
	return int(max(1, min(storeAhead, indexAheadBytes*int64(len(files))/total)))
}

// listIndexFiles lists the index files in the order the store received them (modification
// time, then name). The index uses the copy of a duplicated blob from the pack loaded first, so
// copies are ranked by something a client cannot choose for files already stored: the name is
// the hash of content the client picks, the arrival time is the store's.
func listIndexFiles(ctx context.Context, be store.Backend) ([]idFile, error) {
	files, err := listFiles(ctx, be, store.KindIndex)
	slices.SortStableFunc(files, func(a, b idFile) int {
		if c := a.ModTime.Compare(b.ModTime); c != 0 {
			return c
		}
		return compareIDs(a.ID, b.ID)
	})
	return files, err
}

// syncIndex reloads the index if an index file this value knows has disappeared: a prune ran
// between Open and the lock just taken, and blobs the loaded index promises may be gone.
// Deduplicating against them would commit snapshots with missing data. Called by Lock, so the
// index a locked run works with is never older than its lock.
func (r *Repository) syncIndex(ctx context.Context) error {
	var busy bool
	stale, err := r.indexFilesGone(ctx, func() { busy = len(r.idx.overlay) > 0 || len(r.unindexed) > 0 })
	if err != nil || !stale {
		return err
	}
	if busy {
		return fmt.Errorf("the repository was pruned while this run had unsaved blobs; run the job again")
	}
	return r.loadIndex(ctx, false)
}

// indexFilesGone lists the index files and reports whether one that this value loaded is gone:
// a prune ran since. also runs under the same lock as the comparison, for state that must be
// read together with its answer.
func (r *Repository) indexFilesGone(ctx context.Context, also func()) (bool, error) {
	current, err := listIDs(ctx, r.be, store.KindIndex)
	if err != nil {
		return false, err
	}
	present := make(map[ID]bool, len(current))
	for _, id := range current {
		present[id] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	also()
	for _, id := range r.indexFiles {
		if !present[id] {
			return true, nil
		}
	}
	return false, nil
}
