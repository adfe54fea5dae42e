package repo

import (
	"context"
	"fmt"

	"github.com/snapferry/snapferry/images/store"
)

// AdoptReport says what AdoptUnindexed indexed.
type AdoptReport struct {
	Packs int   `json:"packs"`
	Blobs int   `json:"blobs"`
	Bytes int64 `json:"bytes"`
}

// AdoptUnindexed indexes the complete packs that a killed or failed run left in no index, so a
// backup after a kill, a cut link or a full store sends only what is missing instead of
// everything since the last index file. Call it under a shared lock, before saving blobs.
//
// A pack under its final name is complete (stores publish files atomically, named by the hash
// of their bytes); its header is read and checked (CRC, the sizes adding up to the file, the
// AEAD tag of an encrypted repository) before it is indexed, and every blob is verified when it
// is read, as for any pack. Packs a prune dropped (tombstones) stay out: nothing needs them.
// A pack a running backup has uploaded but not yet indexed may be adopted too; two index
// entries for one pack are harmless.
func (r *Repository) AdoptUnindexed(ctx context.Context) (AdoptReport, error) {
	packs, err := r.ListPacks(ctx)
	if err != nil {
		return AdoptReport{}, err
	}
	return r.AdoptListed(ctx, packs)
}

// ListPacks lists the data folder for AdoptListed. A backup lists it while its lock is being
// checked (LockAnd): over a link the listing then costs no round trip of its own.
func (r *Repository) ListPacks(ctx context.Context) ([]store.FileInfo, error) {
	var files []store.FileInfo
	err := r.be.List(ctx, store.KindData, func(fi store.FileInfo) error {
		files = append(files, fi)
		return nil
	})
	return files, err
}

// AdoptListed is AdoptUnindexed on a listing of the data folder taken by ListPacks (under the
// lock, or while it was being taken): packs it names that the index, as loaded now, does not.
func (r *Repository) AdoptListed(ctx context.Context, files []store.FileInfo) (AdoptReport, error) {
	var rep AdoptReport
	r.mu.Lock()
	known := make(map[ID]bool, len(r.idx.packNum)+len(r.idx.dropped))
	for id := range r.idx.packNum {
		known[id] = true
	}
	for id := range r.idx.dropped {
		known[id] = true
	}
	r.mu.Unlock()
	var cand []store.FileInfo
	for _, fi := range files {
		if id, err := ParseID(fi.Name); err == nil && !known[id] {
			cand = append(cand, fi)
		}
	}
	if len(cand) == 0 {
		return rep, nil
	}
	headers := make([][]packBlob, len(cand))
	err := forEachParallel(ctx, storeWorkers, len(cand), func(ctx context.Context, i int) error {
		id, _ := ParseID(cand[i].Name)
		blobs, err := readPackHeader(ctx, r.be, id, cand[i].Size, r.crypt)
		if err == nil {
			headers[i] = blobs
		} else if !isDamage(err) {
			return err // a damaged pack is left for check; a failed read stops the adoption
		}
		return ctx.Err()
	})
	if err != nil {
		return rep, fmt.Errorf("adopt unindexed packs: %w", err)
	}
	var packs []indexedPack
	for i, blobs := range headers {
		if len(blobs) == 0 {
			continue
		}
		id, _ := ParseID(cand[i].Name)
		packs = append(packs, indexedPack{ID: id, Blobs: blobs})
		rep.Packs++
		rep.Blobs += len(blobs)
		rep.Bytes += cand[i].Size
	}
	for start := 0; start < len(packs); start += 256 {
		if _, err := r.saveIndexFile(ctx, packs[start:min(start+256, len(packs))]); err != nil {
			return rep, fmt.Errorf("adopt unindexed packs: %w", err)
		}
	}
	if len(packs) > 0 {
		if err := r.loadIndex(ctx, false); err != nil {
			return rep, fmt.Errorf("adopt unindexed packs: %w", err)
		}
	}
	return rep, nil
}
