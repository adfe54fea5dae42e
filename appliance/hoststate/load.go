package hoststate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/snapferry/snapferry/images/repo"
)

// ErrNoState is returned (wrapped) when the repository has no host-state snapshot for the host.
var ErrNoState = errors.New("no host-state snapshot")

// Load reads the newest host-state snapshot of host. When there is none, the error names the
// hosts that have one, so the user can pick with --host-name.
func Load(ctx context.Context, r *repo.Repository, host string) (*State, repo.SnapshotInfo, error) {
	if host == "" {
		return nil, repo.SnapshotInfo{}, errors.New("load host state: no host name given")
	}
	all, err := r.ListSnapshots(ctx, repo.SnapshotFilter{Kind: Kind})
	if err != nil {
		return nil, repo.SnapshotInfo{}, fmt.Errorf("load host state: %w", err)
	}
	var hosts []string
	var latest *repo.SnapshotInfo
	for i := range all { // oldest first: the last match is the newest
		s := &all[i]
		if !slices.Contains(hosts, s.Snapshot.Host) {
			hosts = append(hosts, s.Snapshot.Host)
		}
		if s.Snapshot.Host == host {
			latest = s
		}
	}
	if latest == nil {
		slices.Sort(hosts)
		known := "none: back up from the old host with this version first"
		if len(hosts) > 0 {
			known = strings.Join(hosts, ", ") + " (give one with --host-name)"
		}
		return nil, repo.SnapshotInfo{}, fmt.Errorf("%w for host %q in this repository; hosts with one: %s", ErrNoState, host, known)
	}
	st, err := loadTree(ctx, r, latest)
	if err != nil {
		return nil, repo.SnapshotInfo{}, fmt.Errorf("load host state %s of %s: %w", latest.ID.Short(), host, err)
	}
	return st, *latest, nil
}

func loadTree(ctx context.Context, r *repo.Repository, si *repo.SnapshotInfo) (*State, error) {
	if si.Snapshot.Tree == nil {
		return nil, fmt.Errorf("snapshot has no tree: %w", ErrCorrupt)
	}
	tb, err := r.LoadBlob(ctx, repo.TreeBlob, *si.Snapshot.Tree, nil)
	if err != nil {
		return nil, err
	}
	t, err := repo.UnmarshalTree(tb)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrCorrupt)
	}
	files := map[string][]byte{}
	for _, n := range t.Nodes {
		if n.Type != repo.NodeFile || n.Size > maxFile {
			return nil, fmt.Errorf("entry %q is not a state file: %w", n.Name, ErrCorrupt)
		}
		var data []byte
		for _, id := range n.Content {
			b, err := r.LoadBlob(ctx, repo.DataBlob, id, nil)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", n.Name, err)
			}
			data = append(data, b...)
			if len(data) > maxFile {
				return nil, fmt.Errorf("%s: over %d bytes: %w", n.Name, maxFile, ErrCorrupt)
			}
		}
		if uint64(len(data)) != n.Size {
			return nil, fmt.Errorf("%s: %d bytes, tree says %d: %w", n.Name, len(data), n.Size, ErrCorrupt)
		}
		files[n.Name] = data
	}
	mb, ok := files[ManifestFile]
	if !ok {
		return nil, fmt.Errorf("no %s: %w", ManifestFile, ErrCorrupt)
	}
	m, err := ParseManifest(mb)
	if err != nil {
		return nil, err
	}
	delete(files, ManifestFile)
	for _, f := range m.Files {
		if _, ok := files[f]; !ok {
			return nil, fmt.Errorf("%s lists %s, the snapshot lacks it: %w", ManifestFile, f, ErrCorrupt)
		}
	}
	return &State{Manifest: *m, Files: files}, nil
}
