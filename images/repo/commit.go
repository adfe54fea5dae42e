package repo

import (
	"context"
	"fmt"
)

// Committer is what a backup run needs to commit its snapshot; *Repository implements it.
type Committer interface {
	Flush(ctx context.Context) error
	SaveSnapshot(ctx context.Context, sn *Snapshot) (ID, error)
	Stats() RunStats
}

// Run is one backup's view of a repository's write counters: begun before the backup stores its
// first blob, it tells at commit what this backup uploaded (several backups of one command
// share the repository and its counters).
type Run struct {
	r      Committer
	stored int64
}

// BeginRun starts counting a backup's stored bytes.
func BeginRun(r Committer) Run { return Run{r: r, stored: r.Stats().BytesStored} }

// Commit is the one commit path of every backup (image, files, VM): it flushes the packs and
// the index, records in st the bytes this backup stored, and writes the snapshot with those
// stats last: only that write makes the backup visible (pack → index → snapshot).
func (u Run) Commit(ctx context.Context, sn *Snapshot, st Stats) (ID, error) {
	if err := u.r.Flush(ctx); err != nil {
		return ID{}, fmt.Errorf("store data of %s: %w", sn.Source, err)
	}
	st.BytesStored = u.r.Stats().BytesStored - u.stored
	sn.Stats = st
	id, err := u.r.SaveSnapshot(ctx, sn)
	if err != nil {
		return ID{}, fmt.Errorf("commit snapshot of %s: %w", sn.Source, err)
	}
	return id, nil
}

// LatestBySource lists the snapshots of host once and keeps the newest of each source: the
// parents of the snapshots a backup run writes. Listing loads every snapshot file, so asking once
// per source would repeat that for each image.
func (r *Repository) LatestBySource(ctx context.Context, host string) (map[string]SnapshotInfo, error) {
	all, err := r.ListSnapshots(ctx, SnapshotFilter{Host: host})
	if err != nil {
		return nil, err
	}
	latest := make(map[string]SnapshotInfo)
	for _, s := range all { // oldest first: the last one of a source wins
		latest[s.Snapshot.Source] = s
	}
	return latest, nil
}
