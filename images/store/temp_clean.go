package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"
)

// TempFolders is what CleanTempFolders needs from a folder-layout store: the entries of a folder
// given by its slash path below the root (FolderReader.ReadDir) and the removal of one file by
// its slash path below the root.
type TempFolders interface {
	ReadDir(ctx context.Context, rel string) ([]fs.FileInfo, error)
	RemoveRel(ctx context.Context, rel string) error
}

// CleanTempFolders implements TempCleaner.CleanTemp for the shared folder layout: it finds the
// temp files (TempPrefix) in every folder a Save writes into (the root for the config, each
// kind's folder, every shard of data/) and removes those last written before `before` (zero:
// none, only count). A file that vanishes meanwhile (its upload finished or another cleaner
// removed it) is not counted as removed. Local and SFTP stores share this, so both see the same
// files: a repository written through one and cleaned through the other.
func CleanTempFolders(ctx context.Context, f TempFolders, before time.Time) (TempReport, error) {
	var rep TempReport
	folders := []string{"."}
	for _, k := range Kinds {
		if k != KindConfig {
			folders = append(folders, string(k))
		}
	}
	shards, err := f.ReadDir(ctx, string(KindData))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return rep, err
	}
	for _, s := range shards {
		if s.IsDir() {
			folders = append(folders, path.Join(string(KindData), s.Name()))
		}
	}
	for _, dir := range folders {
		if err := ctx.Err(); err != nil {
			return rep, fmt.Errorf("temp files: %w", err)
		}
		entries, err := f.ReadDir(ctx, dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return rep, err
		}
		for _, e := range entries {
			if e.IsDir() || !strings.HasPrefix(e.Name(), TempPrefix) {
				continue
			}
			rep.Found++
			rep.BytesFound += e.Size()
			if before.IsZero() || !e.ModTime().Before(before) {
				continue
			}
			err := f.RemoveRel(ctx, path.Join(dir, e.Name()))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return rep, err
			}
			rep.Removed++
			rep.BytesRemoved += e.Size()
		}
	}
	return rep, nil
}
