package main

import (
	"bytes"
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
// path) and files (all together in one files snapshot), as absolute paths.
func classifyPaths(paths []string, f backupFlags) ([]imageSource, []string, error) {
	var images []imageSource
	var files []string
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, nil, usagef("path %q: %v", p, err)
		}
		fi, err := os.Stat(abs)
		if err != nil {
			return nil, nil, usagef("cannot back up %s: %v (check the path)", p, err)
		}
		if k := sourceKind(abs, fi, f); k == repo.SnapshotFiles {
			files = append(files, abs)
		} else {
			images = append(images, imageSource{abs, k})
		}
	}
	return images, files, nil
}

// backupPaths backs up each image to its own snapshot (so `latest` finds it by path) and all
// file paths together into one files snapshot.
func (a *app) backupPaths(paths []string, f backupFlags) (*backupResult, error) {
	images, files, err := classifyPaths(paths, f)
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
	parents, err := a.latestBySource(r, host)
	if err != nil {
		return nil, err
	}
	res := &backupResult{}
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
	before := r.Stats()
	var warnings []string // an image that grew or changed while being read
	opts := disk.Options{Progress: prog, Rehash: f.rehash, Warn: func(s string) { warnings = append(warnings, s) }}
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
		Tags: f.tags, Disks: []repo.Disk{d}, Warnings: warnings}
	if p, ok := parents[path]; ok {
		sn.Parent = &p.ID
	}
	id, err := a.commit(r, sn, st, before)
	if err != nil {
		return backupItem{}, err
	}
	return backupItem{Source: path, Kind: "image", Snapshot: id.String(), Stats: sn.Stats, Duration: time.Since(start), Warnings: warnings}, nil
}

// latestBySource lists this host's snapshots once per run and keeps the newest of each source:
// the parents of the snapshots this run writes. Listing loads every snapshot file, so asking
// once per source would repeat that for each image.
func (a *app) latestBySource(r *repo.Repository, host string) (map[string]repo.SnapshotInfo, error) {
	all, err := r.ListSnapshots(a.ctx, repo.SnapshotFilter{Host: host})
	if err != nil {
		return nil, err
	}
	latest := make(map[string]repo.SnapshotInfo)
	for _, s := range all { // oldest first: the last one of a source wins
		latest[s.Snapshot.Source] = s
	}
	return latest, nil
}

// commit flushes packs and index, fills the stored-bytes figure, then writes the snapshot:
// only this last write makes the backup visible.
func (a *app) commit(r *repo.Repository, sn *repo.Snapshot, st repo.Stats, before repo.RunStats) (repo.ID, error) {
	if err := r.Flush(a.ctx); err != nil {
		return repo.ID{}, fmt.Errorf("store data of %s: %w", sn.Source, err)
	}
	after := r.Stats()
	st.BytesStored = after.BytesStored - before.BytesStored
	sn.Stats = st
	id, err := r.SaveSnapshot(a.ctx, sn)
	if err != nil {
		return repo.ID{}, fmt.Errorf("commit snapshot of %s: %w", sn.Source, err)
	}
	return id, nil
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
