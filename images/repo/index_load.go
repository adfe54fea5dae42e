package repo

import (
	"context"
	"fmt"

	"github.com/snapferry/snapferry/images/store"
)

// loadIndex reads every index file into a fresh in-memory index.
func (r *Repository) loadIndex(ctx context.Context) error {
	idx := newIndex()
	var files []ID
	err := r.forEachIndexFile(ctx, func(id ID, p indexedPack) error {
		idx.appendBase(p.ID, p.Blobs)
		return nil
	}, func(id ID) { files = append(files, id) })
	if err != nil {
		return err
	}
	idx.sortBase()
	r.mu.Lock()
	r.idx = idx
	r.indexFiles = files
	r.mu.Unlock()
	return nil
}

// forEachIndexFile decodes every index file, calling fn per pack entry and done per file.
func (r *Repository) forEachIndexFile(ctx context.Context, fn func(file ID, p indexedPack) error, done func(ID)) error {
	names, err := listIDs(ctx, r.be, store.KindIndex)
	if err != nil {
		return err
	}
	for _, id := range names {
		b, err := loadFile(ctx, r.be, store.Handle{Kind: store.KindIndex, Name: id.String()})
		if err != nil {
			return fmt.Errorf("load index: %w", err)
		}
		if err := decodeIndexFile(b, func(p indexedPack) error { return fn(id, p) }); err != nil {
			return fmt.Errorf("load index file %s: %w (run `snapferry check`; `rebuild-index` repairs it)", id.Short(), err)
		}
		if done != nil {
			done(id)
		}
	}
	return nil
}
