package repo

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/snapferry/snapferry/images/store"
)

// RebuildReport counts what RebuildIndex did.
type RebuildReport struct {
	Packs           int      `json:"packs"`
	Blobs           int      `json:"blobs"`
	BadPacks        []ID     `json:"bad_packs,omitempty"` // packs whose header could not be read
	IndexFilesOld   int      `json:"index_files_old"`
	IndexFilesNew   int      `json:"index_files_new"`
	BadPackMessages []string `json:"bad_pack_messages,omitempty"`
}

// rebuildIndexFileBlobs bounds the index files RebuildIndex writes: a reader holds one file in
// memory at a time.
const rebuildIndexFileBlobs = 50_000

// RebuildIndex reads the header of every pack and replaces all index files with fresh ones: the
// repair for lost or damaged index files, possible because packs describe themselves. It holds
// an exclusive lock so no backup writes index files meanwhile. Packs with unreadable headers are
// reported and left alone (check --read-data tells more).
func (r *Repository) RebuildIndex(ctx context.Context) (*RebuildReport, error) {
	unlock, err := r.beginMaintenance(ctx, true, "rebuild index")
	if err != nil {
		return nil, err
	}
	defer unlock()
	rep, err := r.rebuildIndex(ctx)
	if err != nil {
		return nil, fmt.Errorf("rebuild index: %w", err)
	}
	return rep, nil
}

// rebuildIndex is RebuildIndex's work under the lock: list, read every header, write the new
// index files, then remove the old ones (new files first: a crash in between leaves duplicates,
// never a pack no index names).
func (r *Repository) rebuildIndex(ctx context.Context) (*RebuildReport, error) {
	rep := &RebuildReport{}
	old, err := listIDs(ctx, r.be, store.KindIndex)
	if err != nil {
		return nil, err
	}
	rep.IndexFilesOld = len(old)
	var packs []store.FileInfo
	if err := r.be.List(ctx, store.KindData, func(fi store.FileInfo) error {
		packs = append(packs, fi)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list packs in %s: %w", r.be.Location(), err)
	}
	headers, problems, err := r.readPackHeaders(ctx, packs)
	if err != nil {
		return nil, err
	}
	written, err := r.indexPackHeaders(ctx, packs, headers, problems, old, rep)
	if err != nil {
		return nil, err
	}
	if err := r.removeIndexFiles(ctx, old, written); err != nil {
		return nil, err
	}
	return rep, r.loadIndex(ctx, true)
}

// readPackHeaders reads the header of every pack in parallel. It returns, per pack, its blobs or
// why they could not be read; the error is for a read that could not run (a cancelled context).
func (r *Repository) readPackHeaders(ctx context.Context, packs []store.FileInfo) ([][]packBlob, []error, error) {
	headers := make([][]packBlob, len(packs))
	problems := make([]error, len(packs))
	err := forEachParallel(ctx, storeWorkers, len(packs), func(ctx context.Context, i int) error {
		id, err := ParseID(packs[i].Name)
		if err != nil {
			problems[i] = fmt.Errorf("%s: not a pack name", packs[i].Name)
			return nil
		}
		headers[i], problems[i] = readPackHeader(ctx, r.be, id, packs[i].Size, r.crypt)
		return ctx.Err()
	})
	return headers, problems, err
}

// indexPackHeaders writes index files naming the packs whose headers were read, in listing
// order, and reports the others. It returns the names of the files it wrote.
func (r *Repository) indexPackHeaders(ctx context.Context, packs []store.FileInfo, headers [][]packBlob,
	problems []error, old []ID, rep *RebuildReport) (map[ID]bool, error) {
	var batch []indexedPack
	blobsInBatch := 0
	written := map[ID]bool{} // an old file with identical content is rewritten in place: keep it
	writeBatch := func() error {
		if len(batch) == 0 {
			return nil
		}
		id, err := r.saveRebuiltIndexFile(ctx, batch, old)
		if err != nil {
			return err
		}
		written[id] = true
		rep.IndexFilesNew++
		batch, blobsInBatch = nil, 0
		return nil
	}
	for i, fi := range packs {
		if problems[i] != nil {
			if id, err := ParseID(fi.Name); err == nil {
				rep.BadPacks = append(rep.BadPacks, id)
			}
			rep.BadPackMessages = append(rep.BadPackMessages, problems[i].Error())
			continue
		}
		id, _ := ParseID(fi.Name)
		blobs := headers[i]
		headers[i] = nil
		rep.Packs++
		rep.Blobs += len(blobs)
		batch = append(batch, indexedPack{ID: id, Blobs: blobs})
		blobsInBatch += len(blobs)
		if blobsInBatch >= rebuildIndexFileBlobs {
			if err := writeBatch(); err != nil {
				return nil, err
			}
		}
	}
	return written, writeBatch()
}

// saveRebuiltIndexFile saves an index file for packs. Saving keeps a file of the same name as
// it is (identical bytes, in a healthy store), so when the new file is named like an old one,
// the old one is read back: a damaged copy (the very file the rebuild is for) is replaced.
func (r *Repository) saveRebuiltIndexFile(ctx context.Context, packs []indexedPack, old []ID) (ID, error) {
	id, err := r.saveIndexFile(ctx, packs)
	if err != nil || !slices.Contains(old, id) {
		return id, err
	}
	h := store.Handle{Kind: store.KindIndex, Name: id.String()}
	if _, err := loadFile(ctx, r.be, h, r.crypt); !errors.Is(err, ErrCorrupt) {
		return id, nil
	}
	if err := r.be.Remove(ctx, h); err != nil {
		return id, fmt.Errorf("replace damaged index file %s: %w", id.Short(), err)
	}
	return r.saveIndexFile(ctx, packs)
}
