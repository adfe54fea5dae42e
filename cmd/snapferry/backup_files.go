package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/tree"
)

// backupFiles stores the given folders and files as one files snapshot. The newest earlier
// snapshot of the same paths is the parent, so unchanged files are not read again.
func (a *app) backupFiles(r *repo.Repository, paths []string, host string, f backupFlags, prog *renderer, parents map[string]repo.SnapshotInfo) (backupItem, error) {
	start := time.Now()
	before := r.Stats()
	source := strings.Join(paths, " ")
	var parent, parentID *repo.ID
	if p, ok := parents[source]; ok && p.Snapshot.Kind == repo.SnapshotFiles {
		parent, parentID = p.Snapshot.Tree, &p.ID
	}
	exclude, err := excludeMatcher(f.excludes)
	if err != nil {
		return backupItem{}, err
	}
	res, err := tree.Backup(a.ctx, r, paths, tree.Options{
		Parent:        parent,
		Chunking:      tree.Chunking(r.Config().Chunker),
		Progress:      prog,
		Exclude:       exclude,
		OneFileSystem: f.oneFS,
	})
	if err != nil {
		return backupItem{}, fmt.Errorf("back up %s: %w", source, err)
	}
	root := res.Root
	sn := &repo.Snapshot{Time: start, Host: host, Kind: repo.SnapshotFiles, Source: source, Paths: paths,
		Tags: f.tags, Tree: &root, Partial: len(res.Errors) > 0, Parent: parentID, Size: &res.Size}
	var warnings []string
	for _, fe := range res.Errors {
		warnings = append(warnings, fe.Error())
	}
	for _, fw := range res.Warnings { // files that changed while being read
		warnings = append(warnings, fw.Error())
	}
	sn.Warnings = warnings
	id, err := a.commit(r, sn, res.Stats, before)
	if err != nil {
		return backupItem{}, err
	}
	return backupItem{Source: source, Kind: "files", Snapshot: id.String(), Stats: sn.Stats,
		Duration: time.Since(start), Warnings: warnings}, nil
}
