package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// TempPrefix marks files a folder-based store is still writing; List never shows them and a
// handle may not use it. Every folder layout store (local, SFTP, serve) uses the same prefix, so
// any of them can clean up after another.
const TempPrefix = ".tmp-"

// RelDir is the slash-separated folder of h below a repository root in the folder layout every
// file-based store shares: the root for config, KIND/ for the others, and data sharded by the
// first two hex digits of the name (data/ab/abcd...) so no folder grows to a million entries.
func RelDir(h Handle) string {
	switch {
	case h.Kind == KindConfig:
		return "."
	case h.Kind == KindData && len(h.Name) >= 2:
		return path.Join(string(KindData), h.Name[:2])
	}
	return string(h.Kind)
}

// RelPath is the slash-separated path of h's file below a repository root.
func RelPath(h Handle) string {
	if h.Kind == KindConfig {
		return "config"
	}
	return path.Join(RelDir(h), h.Name)
}

// Validate refuses unknown kinds and names that could leave their folder or pass for temp files.
func Validate(h Handle) error {
	switch h.Kind {
	case KindConfig:
		return nil
	case KindKeys, KindData, KindIndex, KindSnapshots, KindLocks:
	default:
		return fmt.Errorf("unknown file kind %q", h.Kind)
	}
	if h.Name == "" || h.Name == "." || h.Name == ".." || strings.ContainsAny(h.Name, "/\\\x00\n") ||
		strings.HasPrefix(h.Name, TempPrefix) {
		return fmt.Errorf("invalid file name %q for %s", h.Name, h.Kind)
	}
	return nil
}

// CheckLoad is the argument check every backend's Load makes before touching a file: a valid
// handle, a live context, an offset not below zero. The error names the handle.
func CheckLoad(ctx context.Context, h Handle, offset int64) error {
	if err := Validate(h); err != nil {
		return fmt.Errorf("load %s: %w", h, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("load %s: %w", h, err)
	}
	if offset < 0 {
		return fmt.Errorf("load %s: negative offset %d", h, offset)
	}
	return nil
}

// FolderReader is what ListFolders needs from a store: the entries of a folder given by its
// slash path below the root (a missing folder is an error matching fs.ErrNotExist), and Stat.
type FolderReader interface {
	ReadDir(ctx context.Context, rel string) ([]fs.FileInfo, error)
	Stat(ctx context.Context, h Handle) (FileInfo, error)
}

// ListFolders implements Backend.List for the shared folder layout: the config file, a kind's
// folder, or every shard of data/. Temp files and folders are skipped; a missing folder lists
// nothing.
func ListFolders(ctx context.Context, r FolderReader, k Kind, fn func(FileInfo) error) error {
	if k == KindConfig {
		fi, err := r.Stat(ctx, Handle{Kind: k})
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		return fn(fi)
	}
	if err := Validate(Handle{Kind: k, Name: "x"}); err != nil {
		return fmt.Errorf("list: %w", err)
	}
	if k != KindData {
		return listFolder(ctx, r, string(k), fn)
	}
	shards, err := r.ReadDir(ctx, string(k))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, s := range shards {
		if !s.IsDir() {
			continue
		}
		if err := listFolder(ctx, r, path.Join(string(k), s.Name()), fn); err != nil {
			return err
		}
	}
	return nil
}

func listFolder(ctx context.Context, r FolderReader, rel string, fn func(FileInfo) error) error {
	entries, err := r.ReadDir(ctx, rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("list %s: %w", rel, err)
		}
		if e.IsDir() || strings.HasPrefix(e.Name(), TempPrefix) {
			continue
		}
		if err := fn(FileInfo{Name: e.Name(), Size: e.Size(), ModTime: e.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}
