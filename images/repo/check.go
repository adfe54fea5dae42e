package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"lukechampine.com/blake3"

	"github.com/snapferry/snapferry/images/progress"
	"github.com/snapferry/snapferry/images/store"
)

// CheckOptions select how deep Check goes.
type CheckOptions struct {
	// ReadData re-reads every pack: its bytes must hash to its name, and every blob must
	// decompress to bytes that hash to its id.
	ReadData bool
	// Progress hears about packs read (bytes) and snapshots walked (files); nil for none.
	Progress progress.Reporter
}

// Problem is one finding of Check.
type Problem struct {
	Kind    string `json:"kind"`   // "index", "pack", "blob" (a patch blob), "snapshot" or "stray"
	Object  string `json:"object"` // the id or name it is about
	Message string `json:"message"`
}

func (p Problem) String() string { return p.Kind + " " + p.Object + ": " + p.Message }

// CheckReport is what Check found. Errors mean damage; warnings are harmless leftovers (packs of
// an interrupted backup) that prune cleans up. Stale locks need no report: taking the check's own
// lock removed them.
type CheckReport struct {
	IndexFiles int `json:"index_files"`
	Packs      int `json:"packs"`
	Blobs      int `json:"blobs"`
	Snapshots  int `json:"snapshots"`
	// PacksRead and BlobsRead count what ReadData verified.
	PacksRead        int       `json:"packs_read"`
	BlobsRead        int       `json:"blobs_read"`
	Errors           []Problem `json:"errors,omitempty"`
	Warnings         []Problem `json:"warnings,omitempty"`
	DamagedPacks     []ID      `json:"damaged_packs,omitempty"`
	DamagedSnapshots []ID      `json:"damaged_snapshots,omitempty"`
	UnindexedPacks   []ID      `json:"unindexed_packs,omitempty"`
	// DamagedBlobs are the blobs of damaged packs that did not verify (ReadData); BlobsMarked
	// counts the copies this check newly marked damaged in the index (so backups store them
	// again; `snapferry repair` removes them).
	DamagedBlobs []ID `json:"damaged_blobs,omitempty"`
	BlobsMarked  int  `json:"blobs_marked,omitempty"`
	// TempFiles and TempBytes count temp files of interrupted uploads (stores that can tell).
	TempFiles int   `json:"temp_files,omitempty"`
	TempBytes int64 `json:"temp_bytes,omitempty"`
	// StrayFiles are files whose names are not ids (KIND/NAME): ignored by every reader.
	StrayFiles []string `json:"stray_files,omitempty"`
}

// OK reports a repository without errors.
func (c *CheckReport) OK() bool { return len(c.Errors) == 0 }

func (c *CheckReport) fail(kind, obj, format string, a ...any) {
	c.Errors = append(c.Errors, Problem{Kind: kind, Object: obj, Message: fmt.Sprintf(format, a...)})
}

func (c *CheckReport) warn(kind, obj, format string, a ...any) {
	c.Warnings = append(c.Warnings, Problem{Kind: kind, Object: obj, Message: fmt.Sprintf(format, a...)})
}

// Check verifies the repository's structure under a shared lock: index files decode, every
// indexed pack exists with the size its index implies, every snapshot's block maps, trees and
// data blobs are indexed (and readable, for trees). With ReadData it also re-hashes all packs and
// blobs. The report names damaged packs and the snapshots that depend on them. The returned
// error is for failures to run the check at all (store unreachable, lock conflict).
func (r *Repository) Check(ctx context.Context, o CheckOptions) (*CheckReport, error) {
	unlock, err := r.beginMaintenance(ctx, false, "check")
	if err != nil {
		return nil, err
	}
	defer unlock()
	rep := &CheckReport{}

	// Index files, read one by one so a damaged one is reported instead of stopping the check.
	idx := newIndex()
	expect := map[ID]int64{} // indexed pack -> size implied by its index entries
	dropped := map[ID]bool{} // packs a prune took out of the index (tombstones)
	blobsOf := map[ID][]packBlob{}
	listed, err := listIndexFiles(ctx, r.be)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	rep.IndexFiles = len(listed)
	for _, lf := range listed {
		f := lf.ID
		b, err := loadFile(ctx, r.be, store.Handle{Kind: store.KindIndex, Name: f.String()}, r.crypt)
		if errors.Is(err, store.ErrNotExist) {
			continue // replaced by a prune running beside the check: its packs are in the new files
		}
		if err == nil {
			err = decodeIndexFile(b, func(p indexedPack) error {
				if len(p.Blobs) == 0 {
					dropped[p.ID] = true
					return nil
				}
				idx.appendBase(p.ID, p.Blobs)
				size := packTailSize(len(p.Blobs), r.crypt)
				for _, bl := range p.Blobs {
					size += int64(bl.Stored)
				}
				expect[p.ID] = size
				if o.ReadData {
					blobsOf[p.ID] = slices.Clone(p.Blobs)
				}
				return nil
			})
		}
		if err != nil {
			rep.fail("index", f.String(), "%v (run `snapferry rebuild-index`)", err)
		}
	}
	idx.sortBase()
	rep.Blobs = len(idx.base)
	r.mu.Lock()
	r.idx = idx
	r.mu.Unlock()

	// Packs present versus packs indexed.
	present := map[ID]int64{}
	err = r.be.List(ctx, store.KindData, func(fi store.FileInfo) error {
		id, err := ParseID(fi.Name)
		if err != nil {
			return nil // a stray file, reported below
		}
		present[id] = fi.Size
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("check: list packs in %s: %w", r.be.Location(), err)
	}
	rep.Packs = len(present)
	strays, err := r.StrayFiles(ctx)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	for _, name := range strays {
		rep.StrayFiles = append(rep.StrayFiles, name)
		rep.warn("stray", name, "the name is not an id, so snapferry did not write this file and every command ignores it; "+
			"remove it on the store host")
	}
	damaged := map[ID]bool{}
	for id, size := range expect {
		got, ok := present[id]
		switch {
		case !ok:
			rep.fail("pack", id.String(), "named by the index but missing from the store")
			damaged[id] = true
		case got != size:
			rep.fail("pack", id.String(), "size %d, the index implies %d", got, size)
			damaged[id] = true
		}
	}
	for _, id := range sortedIDs(present) {
		if _, ok := expect[id]; !ok {
			rep.UnindexedPacks = append(rep.UnindexedPacks, id)
		}
	}
	temps, err := r.TempFiles(ctx)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	rep.TempFiles, rep.TempBytes = temps.Found, temps.BytesFound
	if temps.Found > 0 {
		rep.warn("temp", "", "%d temp files (%d bytes) of interrupted uploads: prune removes them once no writer that "+
			"started before they were last written still runs", temps.Found, temps.BytesFound)
	}

	prog := progress.OrNop(o.Progress)
	if o.ReadData {
		ids := sortedIDs(present)
		var total int64
		for _, size := range present {
			total += size
		}
		prog.Start("read packs", total)
		errs := make([]error, len(ids))
		bads := make([][]packBlob, len(ids))
		var mu sync.Mutex
		err := forEachParallel(ctx, storeWorkers, len(ids), func(ctx context.Context, i int) error {
			packs, blobs, bad, err := r.readPack(ctx, ids[i], present[ids[i]], blobsOf[ids[i]])
			prog.Add(present[ids[i]])
			errs[i], bads[i] = err, bad
			mu.Lock()
			rep.PacksRead += packs
			rep.BlobsRead += blobs
			mu.Unlock()
			return ctx.Err()
		})
		prog.Done()
		if err != nil {
			return nil, fmt.Errorf("check: %w", err)
		}
		badOf := map[ID][]packBlob{}
		for i, err := range errs {
			if err != nil {
				rep.fail("pack", ids[i].String(), "%v", err)
				damaged[ids[i]] = true
				badOf[ids[i]] = bads[i]
			}
		}
		for _, se := range idx.base {
			if se.e.comp&compDamaged != 0 && !damaged[idx.packs[se.e.pack]] {
				rep.warn("blob", se.id.String(), "marked damaged by an earlier check --read-data, but pack %s reads well now; "+
					"`snapferry repair` clears the mark", idx.packs[se.e.pack].Short())
			}
		}
		if err := r.markDamaged(ctx, idx, blobsOf, damaged, badOf, rep); err != nil {
			return nil, fmt.Errorf("check: %w", err)
		}
	}

	if n := len(idx.dups); n > 0 {
		rep.warn("index", "", "%d blobs are stored in more than one pack (backups running at once, an interrupted prune, "+
			"or copies another client added): readers fall back to another copy when one does not verify, and prune "+
			"deletes a copy only after reading and verifying the one it keeps", n)
	}
	patchBase, badPatch, err := r.checkPatches(ctx, idx, damaged, o.ReadData, rep)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}

	// Snapshots and everything they reference.
	snaps, err := listIDs(ctx, r.be, store.KindSnapshots)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	rep.Snapshots = len(snaps)
	seen := map[ID]struct{}{}
	missing := map[ID]bool{} // blobs snapshots need that no index names
	prog.Start("check snapshots", -1)
	defer prog.Done()
	for _, sid := range snaps {
		prog.File(1)
		sn, err := r.LoadSnapshot(ctx, sid)
		if err != nil {
			rep.fail("snapshot", sid.String(), "%v", err)
			rep.DamagedSnapshots = append(rep.DamagedSnapshots, sid)
			continue
		}
		var why []string
		note := func(s string) {
			if len(why) < 5 {
				why = append(why, s)
			}
		}
		err = r.walkSnapshot(ctx, sn, seen, refVisitor{
			blob: func(t BlobType, id ID) {
				e, ok := intactCopy(idx, id, damaged)
				switch {
				case !ok:
					missing[id] = true
					note(fmt.Sprintf("%s blob %s is missing", t, id.Short()))
				case damaged[idx.packs[e.pack]]:
					note(fmt.Sprintf("%s blob %s is in damaged pack %s", t, id.Short(), idx.packs[e.pack].Short()))
				case e.comp&compDamaged != 0 && !o.ReadData: // with ReadData, this read judges
					note(fmt.Sprintf("%s blob %s was found damaged by an earlier check --read-data (run `snapferry repair`)", t, id.Short()))
				case badPatch[id] != "":
					note(fmt.Sprintf("%s blob %s is a damaged patch: %s", t, id.Short(), badPatch[id]))
				default:
					if base, ok := patchBase[id]; ok {
						if be, ok := intactCopy(idx, base, damaged); ok && damaged[idx.packs[be.pack]] {
							note(fmt.Sprintf("%s blob %s is a patch of blob %s in damaged pack %s", t, id.Short(), base.Short(), idx.packs[be.pack].Short()))
						}
					}
				}
			},
			fail: func(what string, id ID, err error) {
				if !errors.Is(err, ErrBlobNotFound) { // missing blobs are noted by blob()
					note(fmt.Sprintf("%s (%s): %v", what, id.Short(), err))
				}
			},
		})
		if err != nil {
			return nil, fmt.Errorf("check: %w", err)
		}
		if len(why) > 0 {
			rep.fail("snapshot", sid.String(), "%s of %s at %s is damaged: %s", sn.Kind, sn.Source,
				sn.Time.Format("2006-01-02 15:04:05"), strings.Join(why, "; "))
			rep.DamagedSnapshots = append(rep.DamagedSnapshots, sid)
		}
	}

	if err := r.judgeUnindexed(ctx, present, dropped, missing, rep); err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	for id := range damaged {
		rep.DamagedPacks = append(rep.DamagedPacks, id)
	}
	slices.SortFunc(rep.DamagedPacks, compareIDs)

	return rep, nil
}

// markDamaged records what check --read-data found: one index file that lists every damaged
// indexed pack again, its bad blobs (all of them when the header is unreadable or the pack is
// missing) flagged blobFlagDamaged. From then on readers try other copies first, backups store
// such blobs again instead of deduplicating against them, and repair knows what to remove.
// Copies already marked are not marked again; an index file only adds, so a shared lock is
// enough.
func (r *Repository) markDamaged(ctx context.Context, idx *index, blobsOf map[ID][]packBlob, damaged map[ID]bool,
	badOf map[ID][]packBlob, rep *CheckReport) error {
	var packs []indexedPack
	ids := map[ID]bool{}
	for _, pid := range sortedIDs(damaged) {
		list, ok := blobsOf[pid]
		if !ok {
			continue // not indexed: nothing deduplicates against it
		}
		bad := badOf[pid]
		num := idx.packNum[pid]
		marked := slices.Clone(list)
		fresh := false
		for i, b := range marked {
			isBad := bad == nil || slices.ContainsFunc(bad, func(x packBlob) bool { return x.Offset == b.Offset && x.ID == b.ID })
			if !isBad {
				continue
			}
			marked[i].Flags |= blobFlagDamaged
			ids[b.ID] = true
			if !idx.copyDamaged(b.ID, num, b.Offset) {
				fresh = true
				rep.BlobsMarked++
			}
		}
		if fresh {
			packs = append(packs, indexedPack{ID: pid, Blobs: marked})
		}
	}
	rep.DamagedBlobs = sortedIDs(ids)
	if len(packs) == 0 {
		return nil
	}
	_, err := r.saveIndexFile(ctx, packs)
	return err
}

// checkPatches reads the header of every indexed patch blob (patches are a small share of the
// blobs, and each is one small read) and reports one whose base is missing from the index or is
// itself a patch. With readData every patch is
// also rebuilt and checked against its id. Patches in damaged packs are left to the pack's
// report, and with readData a base in a damaged pack to the snapshot walk. It returns each
// readable patch's base and a reason per damaged patch.
func (r *Repository) checkPatches(ctx context.Context, idx *index, damaged map[ID]bool, readData bool,
	rep *CheckReport) (map[ID]ID, map[ID]string, error) {
	bases, bad := map[ID]ID{}, map[ID]string{}
	var buf []byte
	for _, se := range idx.base {
		if se.e.comp&compPatch == 0 || damaged[idx.packs[se.e.pack]] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		id := se.id
		fail := func(format string, a ...any) {
			msg := fmt.Sprintf(format, a...)
			rep.fail("blob", id.String(), "patch: %s", msg)
			bad[id] = msg
		}
		base, err := r.patchBase(ctx, id)
		if err != nil {
			fail("%v", err)
			continue
		}
		bases[id] = base
		be, ok := idx.lookup(base)
		switch {
		case !ok:
			fail("its base blob %s is not in the index", base.Short())
			continue
		case be.comp&compPatch != 0:
			fail("its base blob %s is itself a patch (a base must be a whole blob)", base.Short())
			continue
		}
		if readData && !damaged[idx.packs[be.pack]] {
			if buf, err = r.LoadBlob(ctx, DataBlob, id, buf); err != nil {
				fail("%v", err)
			}
		}
	}
	return bases, bad, nil
}

// readPack streams one pack: its bytes must hash to its name, its header must decode and agree
// with the index, and every blob must verify. Only one blob is in memory at a time. It returns
// how many packs (0 or 1) and blobs it read to the end, and the blobs that did not verify when
// the header could be read (nil otherwise: then the whole pack is suspect).
func (r *Repository) readPack(ctx context.Context, id ID, size int64, indexed []packBlob) (packs, good int, badBlobs []packBlob, err error) {
	blobs, err := readPackHeader(ctx, r.be, id, size, r.crypt)
	if err != nil {
		return 0, 0, nil, err
	}
	if indexed != nil && !sameBlobs(blobs, indexed) {
		return 0, 0, nil, fmt.Errorf("pack header and index disagree about its blobs: %w", ErrCorrupt)
	}
	rd, err := r.be.Load(ctx, store.Handle{Kind: store.KindData, Name: id.String()}, 0, 0)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("load: %w", err)
	}
	defer rd.Close()
	h := blake3.New(32, nil)
	tee := io.TeeReader(rd, h)
	var stored, plain []byte
	var bad []string
	for _, b := range blobs {
		stored = grow(stored, int(b.Stored))
		if _, err := io.ReadFull(tee, stored); err != nil {
			return 0, good, nil, fmt.Errorf("read blob %s: %w", b.ID.Short(), err)
		}
		if plain, err = r.decodeBlob(b.packEntry, stored, plain); err != nil {
			bad = append(bad, fmt.Sprintf("blob %s at offset %d: %v", b.ID.Short(), b.Offset, err))
			badBlobs = append(badBlobs, b)
			continue
		}
		good++
	}
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return 0, good, nil, fmt.Errorf("read header: %w", err)
	}
	if len(bad) > 0 {
		return 1, good, badBlobs, fmt.Errorf("%d blobs are damaged (%s): %w", len(bad), strings.Join(bad, "; "), ErrCorrupt)
	}
	var sum ID
	h.Sum(sum[:0])
	if sum != id {
		return 1, good, nil, fmt.Errorf("content hashes to %s, not its name: %w", sum.Short(), ErrCorrupt)
	}
	return 1, good, nil, nil
}

// judgeUnindexed says the right thing about each pack no index names: one that holds blobs
// snapshots need is an error (prune must not delete it; rebuild-index indexes it again), one a
// prune dropped waits for writers that may still use it, others are leftovers of interrupted
// backups (or uploads in progress) that the next backup adopts or prune removes.
func (r *Repository) judgeUnindexed(ctx context.Context, present map[ID]int64, dropped, missing map[ID]bool, rep *CheckReport) error {
	for _, id := range rep.UnindexedPacks {
		var needed []string
		if len(missing) > 0 {
			blobs, err := readPackHeader(ctx, r.be, id, present[id], r.crypt)
			if err != nil && !isDamage(err) {
				return err
			}
			for _, b := range blobs {
				if missing[b.ID] && len(needed) < 5 {
					needed = append(needed, b.ID.Short())
				}
			}
		}
		switch {
		case len(needed) > 0:
			rep.fail("pack", id.String(), "in no index but holds blobs snapshots need (%s): run `snapferry rebuild-index` "+
				"to index it again; prune deletes nothing until then", strings.Join(needed, ", "))
		case dropped[id]:
			rep.warn("pack", id.String(), "dropped from the index by prune (no snapshot needs it); a later prune deletes it "+
				"once no backup that started before then still runs")
		default:
			rep.warn("pack", id.String(), "in no index: left by an interrupted backup, or being written now; the next "+
				"backup adopts it if it is complete, and prune deletes it once no writer that started before it was written still runs")
		}
	}
	return nil
}

// intactCopy returns the copy of id that the index uses, or if its pack is damaged, the first
// other copy in an undamaged pack: a snapshot is damaged only when no copy of a blob is intact.
func intactCopy(idx *index, id ID, damaged map[ID]bool) (indexEntry, bool) {
	e, ok := idx.lookup(id)
	if !ok || !damaged[idx.packs[e.pack]] {
		return e, ok
	}
	for _, d := range idx.dups[id] {
		if !damaged[idx.packs[d.pack]] {
			return d, true
		}
	}
	return e, true
}

func compareIDs(a, b ID) int { return bytes.Compare(a[:], b[:]) }

func sortedIDs[V any](m map[ID]V) []ID {
	ids := make([]ID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, compareIDs)
	return ids
}
