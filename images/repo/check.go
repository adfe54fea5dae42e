package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

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
	c := &checker{r: r, o: o, rep: &CheckReport{}, prog: progress.OrNop(o.Progress),
		damaged: map[ID]bool{}, missing: map[ID]bool{}}
	phases := []func(context.Context) error{
		c.loadIndexFiles,     // what the index claims
		c.comparePacks,       // ... against the packs the store holds
		c.noteStoreLeftovers, // stray and temp files
		c.readData,           // --read-data: every pack and blob re-hashed, damage marked
		c.noteDuplicates,     // blobs stored more than once
		c.checkPatches,       // every patch has a whole base
		c.checkSnapshots,     // every snapshot has what it needs
		c.judgeUnindexed,     // what each pack no index names is
	}
	for _, phase := range phases {
		if err := phase(ctx); err != nil {
			return nil, fmt.Errorf("check: %w", err)
		}
	}
	for id := range c.damaged {
		c.rep.DamagedPacks = append(c.rep.DamagedPacks, id)
	}
	slices.SortFunc(c.rep.DamagedPacks, compareIDs)
	return c.rep, nil
}

// checker holds what Check's phases learn and pass on: each phase reads what earlier ones
// found and adds to the report.
type checker struct {
	r    *Repository
	o    CheckOptions
	rep  *CheckReport
	prog progress.Reporter

	idx     *index
	expect  map[ID]int64      // indexed pack -> size implied by its index entries
	dropped map[ID]bool       // packs a prune took out of the index (tombstones)
	blobsOf map[ID][]packBlob // indexed pack -> its blobs (ReadData only)
	present map[ID]int64      // pack in the store -> its size
	damaged map[ID]bool       // packs missing, of the wrong size, or (ReadData) not verifying
	missing map[ID]bool       // blobs snapshots need that no index names
	// patchBase is each readable patch's base; badPatch the reason per damaged patch.
	patchBase map[ID]ID
	badPatch  map[ID]string
}

// loadIndexFiles reads the index files one by one, so a damaged one is reported instead of
// stopping the check, and makes what they name the repository's index for the later phases.
func (c *checker) loadIndexFiles(ctx context.Context) error {
	r := c.r
	c.idx = newIndex()
	c.expect, c.dropped, c.blobsOf = map[ID]int64{}, map[ID]bool{}, map[ID][]packBlob{}
	listed, err := listIndexFiles(ctx, r.be)
	if err != nil {
		return err
	}
	c.rep.IndexFiles = len(listed)
	for _, lf := range listed {
		f := lf.ID
		b, err := loadFile(ctx, r.be, store.Handle{Kind: store.KindIndex, Name: f.String()}, r.crypt)
		if errors.Is(err, store.ErrNotExist) {
			continue // replaced by a prune running beside the check: its packs are in the new files
		}
		if err == nil {
			err = decodeIndexFile(b, c.addIndexedPack)
		}
		if err != nil {
			c.rep.fail("index", f.String(), "%v (run `snapferry rebuild-index`)", err)
		}
	}
	c.idx.sortBase()
	c.rep.Blobs = len(c.idx.base)
	r.mu.Lock()
	r.idx = c.idx
	r.mu.Unlock()
	return nil
}

// addIndexedPack takes one entry of an index file: a tombstone, or a pack whose size its blobs
// imply.
func (c *checker) addIndexedPack(p indexedPack) error {
	if len(p.Blobs) == 0 {
		c.dropped[p.ID] = true
		return nil
	}
	c.idx.appendBase(p.ID, p.Blobs)
	size := packTailSize(len(p.Blobs), c.r.crypt)
	for _, bl := range p.Blobs {
		size += int64(bl.Stored)
	}
	c.expect[p.ID] = size
	if c.o.ReadData {
		c.blobsOf[p.ID] = slices.Clone(p.Blobs)
	}
	return nil
}

// comparePacks lists the packs the store holds: an indexed pack that is missing or has another
// size than its index implies is damaged; one no index names is judged last (judgeUnindexed).
func (c *checker) comparePacks(ctx context.Context) error {
	c.present = map[ID]int64{}
	err := c.r.be.List(ctx, store.KindData, func(fi store.FileInfo) error {
		id, err := ParseID(fi.Name)
		if err != nil {
			return nil // a stray file, reported by noteStoreLeftovers
		}
		c.present[id] = fi.Size
		return nil
	})
	if err != nil {
		return fmt.Errorf("list packs in %s: %w", c.r.be.Location(), err)
	}
	c.rep.Packs = len(c.present)
	for id, size := range c.expect {
		got, ok := c.present[id]
		switch {
		case !ok:
			c.rep.fail("pack", id.String(), "named by the index but missing from the store")
			c.damaged[id] = true
		case got != size:
			c.rep.fail("pack", id.String(), "size %d, the index implies %d", got, size)
			c.damaged[id] = true
		}
	}
	for _, id := range sortedIDs(c.present) {
		if _, ok := c.expect[id]; !ok {
			c.rep.UnindexedPacks = append(c.rep.UnindexedPacks, id)
		}
	}
	return nil
}

// noteStoreLeftovers warns about files that are not the repository's data but sit in it: stray
// names (ignored by every reader) and temp files of interrupted uploads (prune removes them).
func (c *checker) noteStoreLeftovers(ctx context.Context) error {
	strays, err := c.r.StrayFiles(ctx)
	if err != nil {
		return err
	}
	for _, name := range strays {
		c.rep.StrayFiles = append(c.rep.StrayFiles, name)
		c.rep.warn("stray", name, "the name is not an id, so snapferry did not write this file and every command ignores it; "+
			"remove it on the store host")
	}
	temps, err := c.r.TempFiles(ctx)
	if err != nil {
		return err
	}
	c.rep.TempFiles, c.rep.TempBytes = temps.Found, temps.BytesFound
	if temps.Found > 0 {
		c.rep.warn("temp", "", "%d temp files (%d bytes) of interrupted uploads: prune removes them once no writer that "+
			"started before they were last written still runs", temps.Found, temps.BytesFound)
	}
	return nil
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
