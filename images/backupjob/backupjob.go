package backupjob

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/snapferry/snapferry/images/disk"
	"github.com/snapferry/snapferry/images/progress"
	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/tree"
	"github.com/snapferry/snapferry/images/vmdk"
)

// Options are what every image and file backup of one run shares.
type Options struct {
	Host string   // recorded in the snapshots; parents are this host's
	Tags []string // recorded in the snapshots
	// Parents are the newest snapshots of this host by source (repo.LatestBySource), listed once
	// per run.
	Parents map[string]repo.SnapshotInfo
	// CacheDir holds the block fingerprint caches ("": images are hashed in full).
	CacheDir string
	Rehash   bool // hash every block again, store changed blocks whole (docs/block-cache.md)
	Progress progress.Reporter
	// Prehash holds cache passes started before the repository was open, by image path
	// (disk.StartPrehash); Image hands its image's to disk.Backup, which stops it.
	Prehash map[string]*disk.Prehash
	// Exclude and OneFileSystem are the file tree's options (tree.Options).
	Exclude       func(path string, n *repo.Node) bool
	OneFileSystem bool
}

// Result is one committed snapshot.
type Result struct {
	Source   string
	Snapshot repo.ID
	Stats    repo.Stats
	Duration time.Duration
	Warnings []string // files that could not be read or changed while being read (partial)
}

// Image backs up the disk image at path (absolute) as its own snapshot, so `latest` finds it by
// path. A VMDK descriptor (vmdkPair) brings its flat extent along. The block cache is keyed by
// the path and the repository: the same image backed up again finds its cache.
func Image(ctx context.Context, r *repo.Repository, path string, vmdkPair bool, o Options) (Result, error) {
	start := time.Now()
	run := repo.BeginRun(r)
	var warnings []string // an image that grew or changed while being read
	opts := disk.Options{Progress: o.Progress, Rehash: o.Rehash, Warn: func(s string) { warnings = append(warnings, s) }}
	if o.CacheDir != "" {
		id := r.Config().ID
		opts.Cache, opts.RepoID = disk.CachePath(o.CacheDir, id, path), id
	}
	if !vmdkPair {
		opts.Prehash = o.Prehash[path]
	}
	backup := disk.Backup
	if vmdkPair {
		backup = vmdk.Backup
	}
	d, st, err := backup(ctx, r, path, opts)
	if err != nil {
		return Result{}, fmt.Errorf("back up %s: %w", path, err)
	}
	sn := &repo.Snapshot{Time: start, Host: o.Host, Kind: repo.SnapshotImage, Source: path, Paths: []string{path},
		Tags: o.Tags, Disks: []repo.Disk{d}, Warnings: warnings}
	if p, ok := o.Parents[path]; ok {
		sn.Parent = &p.ID
	}
	id, err := run.Commit(ctx, sn, st)
	if err != nil {
		return Result{}, err
	}
	return Result{Source: path, Snapshot: id, Stats: sn.Stats, Duration: time.Since(start), Warnings: warnings}, nil
}

// Files stores folders and files (absolute paths) as one files snapshot. The newest earlier
// snapshot of the same paths is the parent, so unchanged files are not read again. Files that
// cannot be read make the snapshot partial; they are listed in Warnings.
func Files(ctx context.Context, r *repo.Repository, paths []string, o Options) (Result, error) {
	start := time.Now()
	run := repo.BeginRun(r)
	source := strings.Join(paths, " ")
	var parent, parentID *repo.ID
	if p, ok := o.Parents[source]; ok && p.Snapshot.Kind == repo.SnapshotFiles {
		parent, parentID = p.Snapshot.Tree, &p.ID
	}
	res, err := tree.Backup(ctx, r, paths, tree.Options{
		Parent:        parent,
		Chunking:      tree.Chunking(r.Config().Chunker),
		Progress:      o.Progress,
		Exclude:       o.Exclude,
		OneFileSystem: o.OneFileSystem,
	})
	if err != nil {
		return Result{}, fmt.Errorf("back up %s: %w", source, err)
	}
	root := res.Root
	sn := &repo.Snapshot{Time: start, Host: o.Host, Kind: repo.SnapshotFiles, Source: source, Paths: paths,
		Tags: o.Tags, Tree: &root, Partial: len(res.Errors) > 0, Parent: parentID, Size: &res.Size}
	for _, fe := range append(res.Errors, res.Warnings...) { // unreadable, or changed while being read
		sn.Warnings = append(sn.Warnings, fe.Error())
	}
	id, err := run.Commit(ctx, sn, res.Stats)
	if err != nil {
		return Result{}, err
	}
	return Result{Source: source, Snapshot: id, Stats: sn.Stats, Duration: time.Since(start), Warnings: sn.Warnings}, nil
}
