package main

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/snapferry/snapferry/images/backupjob"
	"github.com/snapferry/snapferry/images/disk"
	"github.com/snapferry/snapferry/images/repo"
)

// imageSuffixes mark regular files that are disk images rather than ordinary files.
var imageSuffixes = []string{".img", ".raw", ".iso", ".bin", "-flat.vmdk", ".disk"}

// sourceKind decides how a PATH is backed up: a folder or ordinary file goes into a file tree,
// a disk image (by name, block device, or --image) is stored as fixed-size blocks, and a VMDK
// descriptor brings its flat extent along.
func sourceKind(path string, fi os.FileInfo, f backupFlags) string {
	switch {
	case f.asFiles || fi.IsDir():
		return repo.SnapshotFiles
	case f.asImage || fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0:
		return repo.SnapshotImage
	case strings.HasSuffix(path, ".vmdk") && fi.Size() < 64<<10 && isDescriptor(path):
		return "vmdk"
	}
	for _, s := range imageSuffixes {
		if strings.HasSuffix(strings.ToLower(path), s) {
			return repo.SnapshotImage
		}
	}
	return repo.SnapshotFiles
}

func isDescriptor(path string) bool {
	b, err := os.ReadFile(path)
	return err == nil && bytes.Contains(b, []byte("createType"))
}

// imageSource is a PATH backed up as a disk image (kind image or vmdk).
type imageSource struct{ path, kind string }

// classifyPaths sorts PATHs into disk images (each its own snapshot, so `latest` finds it by
// path) and files (all together in one files snapshot), as absolute paths. PATHs that cannot be
// read are returned as failed items: the others are still backed up, and the run is partial.
// When no PATH can be read, that is a usage error.
func classifyPaths(paths []string, f backupFlags) ([]imageSource, []string, []backupItem, error) {
	var images []imageSource
	var files []string
	var failed []backupItem
	var firstErr error
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, nil, nil, usagef("path %q: %v", p, err)
		}
		fi, err := os.Stat(abs)
		if err != nil {
			err = fmt.Errorf("cannot back up %s: %v (check the path)", p, errors.Unwrap(err))
			failed = append(failed, backupItem{Source: abs, Kind: "files", Error: err.Error()})
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		if k := sourceKind(abs, fi, f); k == repo.SnapshotFiles {
			files = append(files, abs)
		} else {
			images = append(images, imageSource{abs, k})
		}
	}
	if len(failed) == len(paths) {
		if len(paths) == 1 {
			return nil, nil, nil, asUsage(firstErr)
		}
		return nil, nil, nil, usagef("none of the %d paths can be backed up: %v", len(paths), firstErr)
	}
	return images, files, failed, nil
}

// backupPaths backs up each image to its own snapshot (so `latest` finds it by path) and all
// file paths together into one files snapshot.
func (a *app) backupPaths(paths []string, f backupFlags) (*backupResult, error) {
	images, files, failed, err := classifyPaths(paths, f)
	if err != nil {
		return nil, err
	}
	return a.backupInto(f, true, func(t *backupTarget) (*backupResult, error) {
		cacheDir := a.blockCacheDir()
		if t.parentsErr != nil {
			return nil, t.parentsErr
		}
		exclude, err := excludeMatcher(f.excludes)
		if err != nil {
			return nil, err
		}
		o := backupjob.Options{Host: t.host, Tags: f.tags, Parents: t.parents, CacheDir: cacheDir, Rehash: f.rehash,
			Progress: t.prog, Exclude: exclude, OneFileSystem: f.oneFS, Prehash: a.prehash}
		res := &backupResult{items: failed}
		for _, im := range images {
			br, err := backupjob.Image(a.ctx, t.r, im.path, im.kind == "vmdk", o)
			if err != nil {
				return res, err
			}
			res.items = append(res.items, resultItem("image", br))
		}
		if len(files) > 0 {
			br, err := backupjob.Files(a.ctx, t.r, files, o)
			if err != nil {
				return res, err
			}
			res.items = append(res.items, resultItem("files", br))
		}
		return res, nil
	})
}

// resultItem is the report row of an image or files backup.
func resultItem(kind string, br backupjob.Result) backupItem {
	return backupItem{Source: br.Source, Kind: kind, Snapshot: br.Snapshot.String(), Stats: br.Stats,
		Duration: br.Duration, Warnings: br.Warnings}
}

// blockCacheDir is the folder of the block fingerprint caches in the state folder, after
// removing the caches of sources no backup wrote for disk.CacheMaxAge (one directory listing).
// Without a state folder it is "": images are then hashed in full, which is slower, not wrong.
func (a *app) blockCacheDir() string {
	state, err := a.stateDir()
	if err != nil {
		return ""
	}
	dir := disk.CacheDir(state)
	if _, err := disk.RemoveStaleCaches(dir, disk.CacheMaxAge, time.Now()); err != nil {
		a.warnf("removing old block caches: %v", err)
	}
	return dir
}
