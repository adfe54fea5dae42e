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

	"github.com/snapferry/snapferry/images/disk"
	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/vmdk"
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
	t, err := a.openBackupTarget(f.to)
	if err != nil {
		return nil, err
	}
	defer t.Close(a)
	r, host, prog := t.r, t.host, t.prog
	cacheDir := a.blockCacheDir()
	parents, err := r.LatestBySource(a.ctx, host)
	if err != nil {
		return nil, err
	}
	res := &backupResult{items: failed}
	for _, im := range images {
		it, err := a.backupImage(r, im.path, im.kind, host, f, prog, parents, cacheDir)
		if err != nil {
			return res, err
		}
		res.items = append(res.items, it)
	}
	if len(files) > 0 {
		it, err := a.backupFiles(r, files, host, f, prog, parents)
		if err != nil {
			return res, err
		}
		res.items = append(res.items, it)
	}
	res.events.checkSpace(a, r, f.lowBytes)
	return res, nil
}

func (a *app) backupImage(r *repo.Repository, path, kind, host string, f backupFlags, prog *renderer, parents map[string]repo.SnapshotInfo, cacheDir string) (backupItem, error) {
	start := time.Now()
	run := repo.BeginRun(r)
	opts := disk.Options{Progress: prog, Rehash: f.rehash}
	if cacheDir != "" {
		// Keyed by the absolute path given: the same image backed up again finds its cache.
		id := r.Config().ID
		opts.Cache, opts.RepoID = disk.CachePath(cacheDir, id, path), id
	}
	backup := disk.Backup
	if kind == "vmdk" {
		backup = vmdk.Backup // the descriptor plus its flat extent
	}
	d, st, err := backup(a.ctx, r, path, opts)
	if err != nil {
		return backupItem{}, fmt.Errorf("back up %s: %w", path, err)
	}
	sn := &repo.Snapshot{Time: start, Host: host, Kind: repo.SnapshotImage, Source: path, Paths: []string{path},
		Tags: f.tags, Disks: []repo.Disk{d}}
	if p, ok := parents[path]; ok {
		sn.Parent = &p.ID
	}
	id, err := run.Commit(a.ctx, sn, st)
	if err != nil {
		return backupItem{}, err
	}
	return backupItem{Source: path, Kind: "image", Snapshot: id.String(), Stats: sn.Stats, Duration: time.Since(start)}, nil
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
