package hoststate

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/snapferry/snapferry/images/repo"
)

// chunkSize splits a state file into data blobs: a history file that grows by a line per job
// then re-stores only its last piece.
const chunkSize = 1 << 20

// Save commits st as a host-state snapshot and returns its id. The tree is one folder holding
// manifest.json and the state files, each readable by its owner only.
func Save(ctx context.Context, r *repo.Repository, st *State, now time.Time) (repo.ID, error) {
	m, err := json.MarshalIndent(st.Manifest, "", "  ")
	if err != nil {
		return repo.ID{}, fmt.Errorf("save host state: %w", err)
	}
	var t repo.Tree
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	addFile := func(name string, data []byte) error {
		n := repo.Node{Name: name, Type: repo.NodeFile, Mode: 0o600, Size: uint64(len(data)), UID: uid, GID: gid, ModTime: now}
		for off := 0; off < len(data); off += chunkSize {
			piece := data[off:min(off+chunkSize, len(data))]
			id := r.BlobID(piece)
			if _, err := r.SaveBlob(ctx, repo.DataBlob, id, piece); err != nil {
				return fmt.Errorf("save host state %s: %w", name, err)
			}
			n.Content = append(n.Content, id)
		}
		t.Nodes = append(t.Nodes, n)
		return nil
	}
	if err := addFile(ManifestFile, append(m, '\n')); err != nil {
		return repo.ID{}, err
	}
	for _, name := range st.Manifest.Files {
		if err := addFile(name, st.Files[name]); err != nil {
			return repo.ID{}, err
		}
	}
	tb, err := t.Marshal()
	if err != nil {
		return repo.ID{}, fmt.Errorf("save host state: %w", err)
	}
	root := r.BlobID(tb)
	if _, err := r.SaveBlob(ctx, repo.TreeBlob, root, tb); err != nil {
		return repo.ID{}, fmt.Errorf("save host state: %w", err)
	}
	sn := &repo.Snapshot{Time: now, Host: st.Manifest.Host, Kind: Kind, Source: Source, Paths: []string{st.Manifest.Home}, Tree: &root}
	sn.Stats.BytesAdded = int64(len(m))
	for _, b := range st.Files {
		sn.Stats.BytesAdded += int64(len(b))
	}
	id, err := r.SaveSnapshot(ctx, sn)
	if err != nil {
		return repo.ID{}, fmt.Errorf("save host state: %w", err)
	}
	return id, nil
}

// KeepPerHost is how many host-state snapshots Trim keeps per host. Forget policies leave
// host-state snapshots alone (repo.SnapshotFilter), so this is their retention.
const KeepPerHost = 14

// Trim removes all but the newest keep host-state snapshots of host and returns how many it
// removed; their data goes at the next prune. An append-only store refuses the removal: the
// error says so and nothing is lost.
func Trim(ctx context.Context, r *repo.Repository, host string, keep int) (int, error) {
	all, err := r.ListSnapshots(ctx, repo.SnapshotFilter{Kind: Kind, Host: host})
	if err != nil {
		return 0, fmt.Errorf("trim host state: %w", err)
	}
	n := 0
	for i := 0; i < len(all)-keep; i++ { // oldest first
		if err := r.RemoveSnapshot(ctx, all[i].ID); err != nil {
			return n, fmt.Errorf("trim host state: %w", err)
		}
		n++
	}
	return n, nil
}
