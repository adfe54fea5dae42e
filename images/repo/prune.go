package repo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/snapferry/snapferry/images/progress"
	"github.com/snapferry/snapferry/images/store"
)

// PruneOptions tune Prune.
type PruneOptions struct {
	// RepackThreshold: a pack whose unused bytes exceed this fraction of its blob bytes is
	// rewritten with only its used blobs (default 0.3). Packs below it keep their unused blobs.
	RepackThreshold float64
	// KeepUnindexed spares packs that no index names (and temp files) younger than this, on top
	// of the proof that no writer can use them (prune_leftovers.go). Zero: the proof alone.
	KeepUnindexed time.Duration
	// DryRun computes the report without changing anything.
	DryRun bool
	// Progress hears about the bytes of packs being repacked; nil for none.
	Progress progress.Reporter
}

// PruneReport counts what Prune did (or would do, for a dry run).
type PruneReport struct {
	Snapshots     int `json:"snapshots"`
	BlobsUsed     int `json:"blobs_used"`
	BlobsUnused   int `json:"blobs_unused"`
	PacksKept     int `json:"packs_kept"`
	PacksDeleted  int `json:"packs_deleted"`
	PacksRepacked int `json:"packs_repacked"`
	PacksWritten  int `json:"packs_written"`
	// PacksDropped left the index in this run (unused, or repacked) and are marked dropped
	// (tombstones, docs/repository-format.md); PacksDeferred of all dropped and leftover packs
	// stay on disk because a writer that started before they left the index may still use them
	// (or KeepUnindexed spares them): a later prune deletes them.
	PacksDropped     int   `json:"packs_dropped"`
	PacksDeferred    int   `json:"packs_deferred"`
	UnindexedDeleted int   `json:"unindexed_deleted"` // leftovers of dead writers and earlier prunes
	TempFilesRemoved int   `json:"temp_files_removed"`
	TempBytesRemoved int64 `json:"temp_bytes_removed"`
	IndexFilesOld    int   `json:"index_files_old"`
	IndexFilesNew    int   `json:"index_files_new"`
	BytesFreed       int64 `json:"bytes_freed"`
	// DamagedBlobs are blobs snapshots need of which no copy verified when prune was about to
	// drop one: prune kept every copy (run `snapferry check --read-data`, then `repair`).
	DamagedBlobs []ID `json:"damaged_blobs,omitempty"`
}

// packPlan is prune's verdict on one indexed pack.
type packPlan struct {
	id         ID
	blobs      []packBlob
	used       []bool // per blob: referenced, and this pack holds the copy the index uses
	usedBytes  int64
	totalBytes int64 // stored bytes of all blobs
	size       int64 // file size
	// conflict: index files disagree about this pack's blobs (only a hostile or broken writer
	// makes that); its header decides.
	conflict bool
	// headerRead: blobs come from the pack's own header, not from an index file.
	headerRead bool
}

// Prune removes data no snapshot references. It holds a prune lock, which backups ignore: they
// neither wait for a prune nor stop one (many writers, no waiting). Order keeps the repository
// valid at every step: new packs (repacked blobs) are stored, then a new index naming exactly
// the packs that stay, then the old index files are removed, then the packs that left the index
// are marked dropped; only then are packs deleted, and only those no index names that no live
// writer can use (prune_leftovers.go). If any snapshot references a blob that is not indexed,
// Prune stops before changing anything.
func (r *Repository) Prune(ctx context.Context, o PruneOptions) (*PruneReport, error) {
	if o.RepackThreshold <= 0 {
		o.RepackThreshold = 0.3
	}
	unlock, lk, err := r.beginMaintenanceAs(ctx, false, true, "prune")
	if err != nil {
		return nil, err
	}
	defer unlock()
	p := &pruner{r: r, o: o, lock: lk, rep: &PruneReport{}}
	// Deciding changes nothing in the repository.
	if err := p.runPhases(ctx, p.loadSnapshotsAndIndex, p.decidePacks, p.findLeftovers); err != nil {
		return nil, err
	}
	if o.DryRun {
		p.judgeDryRun()
		return p.rep, nil
	}
	if err := p.runPhases(ctx, p.removeTempFiles, p.rewriteIndex, p.deleteLeftovers); err != nil {
		return nil, err
	}
	return p.rep, nil
}

// pruner holds what Prune's phases learn and pass on, in the order they run.
type pruner struct {
	r    *Repository
	o    PruneOptions
	lock *Lock
	rep  *PruneReport

	snaps  []ID        // the snapshots listed before the index was loaded
	loaded map[ID]bool // the index files prune loaded: only these are its to rewrite

	plans    []*packPlan // every pack those index files name
	oldIndex []ID        // those index files
	tombs    *tombstones // which of them only mark dropped packs

	keep, remove, repack []*packPlan // settlePlans' verdicts

	lo      *leftovers // packs no index names, candidates for deletion
	horizon horizon    // before it, no live writer can have written or loaded anything
}

// runPhases runs phases in order and stops at the first error.
func (p *pruner) runPhases(ctx context.Context, phases ...func(context.Context) error) error {
	for _, phase := range phases {
		if err := phase(ctx); err != nil {
			return fmt.Errorf("prune: %w", err)
		}
	}
	return nil
}

// loadSnapshotsAndIndex lists the snapshots, then loads the index. Snapshots come first: a
// snapshot is written after the index files it needs, so every snapshot listed now is covered by
// the index loaded next. Snapshots that backups commit later are looked at again before anything
// is deleted (rescueNewSnapshots).
func (p *pruner) loadSnapshotsAndIndex(ctx context.Context) error {
	r := p.r
	var err error
	if p.snaps, err = listIDs(ctx, r.be, store.KindSnapshots); err != nil {
		return err
	}
	if err := r.loadIndex(ctx, true); err != nil {
		return err
	}
	// Only the index files loaded now are prune's to rewrite: backups running meanwhile add
	// others, whose packs prune leaves alone.
	r.mu.Lock()
	p.loaded = make(map[ID]bool, len(r.indexFiles))
	for _, id := range r.indexFiles {
		p.loaded[id] = true
	}
	r.mu.Unlock()
	return nil
}

// decidePacks marks the blobs snapshots use (and the bases of used patches), then sorts the
// packs into kept, removed and repacked ones, verifying every copy it keeps in place of one it
// drops (settlePlans).
func (p *pruner) decidePacks(ctx context.Context) error {
	r, rep := p.r, p.rep
	used, err := r.markUsed(ctx, p.snaps, rep)
	if err != nil {
		return err
	}
	if err := r.markPatchBases(ctx, used); err != nil {
		return err
	}
	if p.plans, p.oldIndex, p.tombs, err = r.planPacks(ctx, used, p.loaded); err != nil {
		return err
	}
	rep.IndexFilesOld = len(p.oldIndex)
	if p.keep, p.remove, p.repack, err = r.settlePlans(ctx, p.plans, used, p.o.RepackThreshold, rep); err != nil {
		return err
	}
	rep.PacksKept, rep.PacksDeleted, rep.PacksRepacked = len(p.keep), len(p.remove), len(p.repack)
	rep.PacksDropped = len(p.remove) + len(p.repack)
	return nil
}

// findLeftovers lists the packs no index names, and when the oldest live writer started: what
// may be deleted is decided against it.
func (p *pruner) findLeftovers(ctx context.Context) error {
	var err error
	if p.lo, err = p.r.findLeftovers(ctx, p.plans, p.tombs); err != nil {
		return err
	}
	p.horizon, err = p.r.writerHorizon(ctx, p.lock)
	return err
}

// judgeDryRun fills the report as if the packs leaving the index had left it now.
func (p *pruner) judgeDryRun() {
	now := p.r.storeNow(p.horizon)
	for _, pl := range slices.Concat(p.remove, p.repack) {
		p.lo.packs = append(p.lo.packs, leftover{id: pl.id, size: pl.size, since: now, dropped: true})
	}
	p.r.judgeLeftovers(p.lo, p.horizon, p.o.KeepUnindexed, p.rep)
}

// removeTempFiles removes temp files of interrupted uploads that no live writer can still be
// writing.
func (p *pruner) removeTempFiles(ctx context.Context) error {
	n, bytes, err := p.r.cleanTemp(ctx, p.horizon, p.o.KeepUnindexed)
	if err != nil {
		return err
	}
	p.rep.TempFilesRemoved, p.rep.TempBytesRemoved = n, bytes
	return nil
}

// rewriteIndex stores the repacked blobs in new packs, replaces the index files prune loaded by
// ones naming exactly the packs that stay, and marks the packs that left the index dropped. It
// deletes no pack: deleteLeftovers does, once no writer can use them.
func (p *pruner) rewriteIndex(ctx context.Context) error {
	if len(p.remove) == 0 && len(p.repack) == 0 {
		return nil
	}
	r, rep := p.r, p.rep
	newPacks, written, err := r.repack(ctx, p.repack, progress.OrNop(p.o.Progress), nil)
	if err != nil {
		return err
	}
	rep.PacksWritten = len(newPacks)
	rep.BytesFreed -= written
	final := p.finalIndex(newPacks)
	var rewrite []ID // files that only mark dropped packs stay: their time is the proof's
	for _, id := range p.oldIndex {
		if _, ok := p.tombs.files[id]; !ok {
			rewrite = append(rewrite, id)
		}
	}
	r.mu.Lock()
	before := r.idx
	r.mu.Unlock()
	if _, rep.IndexFilesNew, err = r.replaceIndex(ctx, final, rewrite, nil, nil); err != nil {
		return err
	}
	if err := r.rescueNewSnapshots(ctx, before, p.snaps); err != nil {
		return err
	}
	return p.markDropped(ctx, final)
}

// finalIndex is every pack that stays, complete (the index always matches the pack headers):
// the new packs and the kept ones. Damage marks of check --read-data stay until repair (a header
// read drops them).
func (p *pruner) finalIndex(newPacks []indexedPack) []indexedPack {
	r := p.r
	final := newPacks
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, pl := range p.keep {
		num := r.idx.packNum[pl.id]
		for i, b := range pl.blobs {
			if r.idx.copyDamaged(b.ID, num, b.Offset) {
				pl.blobs[i].Flags |= blobFlagDamaged
			}
		}
		final = append(final, indexedPack{ID: pl.id, Blobs: pl.blobs})
	}
	return final
}

// markDropped writes the tombstone of the removed and repacked packs that the final index does
// not name, and adds them to the leftovers deleteLeftovers judges.
func (p *pruner) markDropped(ctx context.Context, final []indexedPack) error {
	named := map[ID]bool{}
	for _, np := range final {
		named[np.ID] = true
	}
	var dropped []ID
	for _, pl := range slices.Concat(p.remove, p.repack) {
		if !named[pl.id] {
			dropped = append(dropped, pl.id)
			p.lo.packs = append(p.lo.packs, leftover{id: pl.id, size: pl.size, dropped: true})
		}
	}
	return p.r.markDropped(ctx, dropped, p.lo)
}

// deleteLeftovers deletes the packs no index names that no live writer can use, and loads the
// index as it is now. The writers' horizon is taken again: a backup may have started while
// prune rewrote the index.
func (p *pruner) deleteLeftovers(ctx context.Context) error {
	r := p.r
	var err error
	if p.horizon, err = r.writerHorizon(ctx, p.lock); err != nil {
		return err
	}
	if err := r.deleteLeftovers(ctx, p.lo, p.horizon, p.o.KeepUnindexed, p.rep); err != nil {
		return err
	}
	return r.loadIndex(ctx, true)
}

// replaceIndex is the committing half of prune and repair: write index files naming exactly
// final, then remove the old index files, then the packs in drop and the unindexed packs. A
// crash between steps leaves duplicates or unindexed packs, never an index naming a missing
// pack. It returns the packs of drop it kept because final names them (a repack that yields an
// existing pack's exact bytes: a prune killed after its new index, then run again) and how many
// index files it wrote.
func (r *Repository) replaceIndex(ctx context.Context, final []indexedPack, oldIndex []ID, drop []*packPlan,
	unindexed []ID) ([]*packPlan, int, error) {
	fresh := map[ID]bool{} // an old file with identical content was rewritten in place: keep it
	written := 0
	for start := 0; start < len(final); start += 256 {
		id, err := r.saveIndexFile(ctx, final[start:min(start+256, len(final))])
		if err != nil {
			return nil, written, err
		}
		fresh[id] = true
		written++
	}
	r.hook(HookPruneIndex)
	if err := r.removeIndexFiles(ctx, oldIndex, fresh); err != nil {
		return nil, written, err
	}
	r.hook(HookPruneDelete)
	named := make(map[ID]bool, len(final))
	for _, np := range final {
		named[np.ID] = true
	}
	var kept []*packPlan
	for _, p := range drop {
		if named[p.id] {
			kept = append(kept, p)
			continue
		}
		if err := r.removeFile(ctx, store.KindData, p.id); err != nil {
			return nil, written, err
		}
	}
	for _, id := range unindexed {
		if err := r.removeFile(ctx, store.KindData, id); err != nil {
			return nil, written, err
		}
	}
	if err := r.loadIndex(ctx, true); err != nil {
		return nil, written, err
	}
	return kept, written, nil
}

// removeIndexFiles removes the index files old except those in keep: a new index file with the
// content of an old one has its name, so it was rewritten in place and must stay.
func (r *Repository) removeIndexFiles(ctx context.Context, old []ID, keep map[ID]bool) error {
	for _, id := range old {
		if keep[id] {
			continue
		}
		if err := r.removeFile(ctx, store.KindIndex, id); err != nil {
			return err
		}
	}
	return nil
}

func (r *Repository) removeFile(ctx context.Context, k store.Kind, id ID) error {
	err := r.be.Remove(ctx, store.Handle{Kind: k, Name: id.String()})
	if err != nil && !errors.Is(err, store.ErrNotExist) {
		return fmt.Errorf("remove %s/%s: %w", k, id.Short(), err)
	}
	return nil
}

// markUsed walks every snapshot and returns a bit per base index entry: one bit per blob instead
// of a set of ids, so marking 2M blobs costs 256 KiB.
func (r *Repository) markUsed(ctx context.Context, snaps []ID, rep *PruneReport) ([]uint64, error) {
	rep.Snapshots = len(snaps)
	r.mu.Lock()
	idx := r.idx
	r.mu.Unlock()
	used := make([]uint64, (len(idx.base)+63)/64)
	var problem error
	seen := map[ID]struct{}{}
	for _, sid := range snaps {
		sn, err := r.loadListedSnapshot(ctx, sid)
		if err != nil {
			return nil, fmt.Errorf("%w; nothing was deleted (run `snapferry check`)", err)
		}
		if sn == nil {
			rep.Snapshots--
			continue
		}
		err = r.walkSnapshot(ctx, sn, seen, refVisitor{
			blob: func(t BlobType, id ID) {
				i := idx.find(id)
				if i < 0 {
					if problem == nil {
						problem = fmt.Errorf("snapshot %s needs %s blob %s: %w", sid.Short(), t, id.Short(), ErrBlobNotFound)
					}
					return
				}
				used[i/64] |= 1 << (i % 64)
			},
			fail: func(what string, id ID, err error) {
				if problem == nil {
					problem = fmt.Errorf("snapshot %s: %s (%s): %w", sid.Short(), what, id.Short(), err)
				}
			},
		})
		if err != nil {
			return nil, err
		}
		if problem != nil {
			return nil, fmt.Errorf("%w; nothing was deleted (run `snapferry check`, then `rebuild-index`)", problem)
		}
	}
	return used, nil
}

// markPatchBases marks the base of every used patch blob: a patch is worthless without it. The
// base id is read from the patch itself (one small read per used patch; the in-memory index has
// no room for it). A base that is not indexed, or a patch that cannot be read, stops the prune
// before anything is deleted. Bases are whole blobs, so one pass suffices; the work list also
// follows a (damaged) patch-of-a-patch chain rather than lose data.
func (r *Repository) markPatchBases(ctx context.Context, used []uint64) error {
	r.mu.Lock()
	idx := r.idx
	r.mu.Unlock()
	var todo []int
	for i := range idx.base {
		if used[i/64]&(1<<(i%64)) != 0 && idx.base[i].e.comp&compPatch != 0 {
			todo = append(todo, i)
		}
	}
	for len(todo) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		i := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		id := idx.base[i].id
		bases, err := r.patchBases(ctx, idx, id)
		if err != nil {
			return err
		}
		for _, j := range bases {
			if used[j/64]&(1<<(j%64)) == 0 {
				used[j/64] |= 1 << (j % 64)
				if idx.base[j].e.comp&compPatch != 0 {
					todo = append(todo, j)
				}
			}
		}
	}
	return nil
}

// patchBases returns the base positions of every copy of patch blob id that reads and names an
// indexed base: keeping one base too many is harmless, losing the one the intact copy needs is
// not (another copy may be a fake naming another base). No such copy stops the prune.
func (r *Repository) patchBases(ctx context.Context, idx *index, id ID) ([]int, error) {
	var out []int
	var first error
	for _, c := range append([]indexEntry{idx.base[idx.find(id)].e}, idx.dups[id]...) {
		if c.comp&compPatch == 0 {
			continue
		}
		base, err := r.patchBaseOf(ctx, id, c, idx.packs[c.pack])
		if err == nil {
			if j := idx.find(base); j >= 0 {
				out = append(out, j)
				continue
			}
			err = fmt.Errorf("patch blob %s needs base blob %s: %w; nothing was deleted (run `snapferry check`, then `rebuild-index`)",
				id.Short(), base.Short(), ErrBlobNotFound)
		} else {
			err = fmt.Errorf("patch blob %s: %w; nothing was deleted (run `snapferry check --read-data`)", id.Short(), err)
		}
		if first == nil {
			first = err
		}
	}
	if len(out) == 0 && first != nil {
		return nil, first
	}
	return out, nil
}

// planPacks reads the index files again (the in-memory index keeps one copy per blob, prune
// needs every pack's full list) and computes per pack how much of it is used.
//
// Only index files in only are read (nil: all). Entries that name a pack without blobs mark
// packs a prune dropped (tombstones): they are returned apart, by file.
func (r *Repository) planPacks(ctx context.Context, used []uint64, only map[ID]bool) ([]*packPlan, []ID, *tombstones, error) {
	r.mu.Lock()
	idx := r.idx
	r.mu.Unlock()
	var plans []*packPlan
	planned := map[ID]*packPlan{}
	var files []ID
	tombs := &tombstones{files: map[ID][]ID{}}
	ordinary := map[ID]bool{} // files that name packs with blobs: not tombstone files
	err := r.forEachIndexFile(ctx, func(file ID, ip indexedPack) error {
		if only != nil && !only[file] {
			return nil
		}
		if len(ip.Blobs) == 0 {
			tombs.files[file] = append(tombs.files[file], ip.ID)
			return nil
		}
		ordinary[file] = true
		if p := planned[ip.ID]; p != nil {
			// The same pack in two index files (an interrupted prune or rebuild) is harmless
			// when both agree; when they do not, one of them lies and the header decides.
			if !sameBlobs(p.blobs, ip.Blobs) {
				p.conflict = true
			}
			return nil
		}
		p := &packPlan{id: ip.ID, blobs: append([]packBlob(nil), ip.Blobs...)}
		planned[ip.ID] = p
		plans = append(plans, p)
		return nil
	}, func(id ID) {
		if only == nil || only[id] {
			files = append(files, id)
		}
	}, nil, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	for file := range ordinary {
		delete(tombs.files, file)
	}
	for _, p := range plans {
		p.mark(idx, used, nil, r.crypt)
	}
	return plans, files, tombs, nil
}

// mark computes which blobs of the pack prune keeps: those that snapshots use and whose copy the
// index uses is this one, plus every copy of the blobs in keepAll (no copy of them verified).
func (p *packPlan) mark(idx *index, used []uint64, keepAll map[ID]bool, c *cryptor) {
	p.used = make([]bool, len(p.blobs))
	p.usedBytes, p.totalBytes = 0, 0
	p.size = packTailSize(len(p.blobs), c)
	num, indexed := idx.packNum[p.id]
	for i, b := range p.blobs {
		p.totalBytes += int64(b.Stored)
		p.size += int64(b.Stored)
		pos := idx.find(b.ID)
		if pos < 0 || used[pos/64]&(1<<(pos%64)) == 0 {
			continue
		}
		e := idx.base[pos].e
		if keepAll[b.ID] || (indexed && e.pack == num && e.offset == b.Offset) {
			p.used[i] = true
			p.usedBytes += int64(b.Stored)
		}
	}
}
