package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/snapferry/snapferry/images/repo"
)

// splitSnapshotRef splits "SNAPSHOT[:PATH]" (restore, ls).
func splitSnapshotRef(s string) (ref, path string) {
	if i := strings.IndexByte(s, ':'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// findSnapshot resolves an id, a unique id prefix, or "latest" (narrowed by source) to a
// snapshot, with messages that say what to do when it does not resolve.
func (a *app) findSnapshot(r *repo.Repository, ref string, f repo.SnapshotFilter) (repo.SnapshotInfo, error) {
	if ref == "" {
		return repo.SnapshotInfo{}, usagef("no snapshot given: pass a snapshot id, a unique prefix of one, or latest")
	}
	s, err := r.FindSnapshot(a.ctx, ref, f)
	switch {
	case errors.Is(err, repo.ErrSnapshotNotFound):
		return s, fmt.Errorf("snapshot %q: %w; list them with `snapferry snapshots`", ref, err)
	case errors.Is(err, repo.ErrAmbiguousSnapshot):
		return s, usagef("snapshot %q: %v; give more digits (or --source with latest)", ref, err)
	}
	return s, err
}
