package tape

import (
	"context"
	"fmt"

	"github.com/snapferry/snapferry/images/repo"
)

// SetRepo is one save set seen as the repository a backup (VM job, disk image, file tree)
// writes into: blobs go into the set's stream, the snapshot manifest ends it, so tape backups run
// the same code and the same commit path (repo.Run) as repository backups. There is no parent on
// tape and nothing to flush before the manifest.
type SetRepo struct {
	*Encoder
	set   SetStream
	entry *SetEntry
	err   error // a tape failure (as opposed to a VM's)
}

// NewSetRepo writes a set's stream through enc into set.
func NewSetRepo(enc *Encoder, set SetStream) *SetRepo { return &SetRepo{Encoder: enc, set: set} }

// Flush does nothing: the encoder writes each blob as it comes.
func (t *SetRepo) Flush(ctx context.Context) error { return nil }

// Stats is zero: what a set stored is known when it is finished (Entry().Bytes).
func (t *SetRepo) Stats() repo.RunStats { return repo.RunStats{} }

// FindSnapshot finds nothing: save sets are always full.
func (t *SetRepo) FindSnapshot(ctx context.Context, ref string, f repo.SnapshotFilter) (repo.SnapshotInfo, error) {
	return repo.SnapshotInfo{}, fmt.Errorf("tape save sets have no parent: %w", repo.ErrSnapshotNotFound)
}

// SaveSnapshot ends the set: manifest, trailer, catalog entry.
func (t *SetRepo) SaveSnapshot(ctx context.Context, sn *repo.Snapshot) (repo.ID, error) {
	if sn.Version == 0 {
		sn.Version = repo.SnapshotVersion
	}
	id, info, err := t.Encoder.Finish(sn)
	if err != nil {
		t.err = err
		return id, err
	}
	e, err := t.set.Finish(info)
	if err != nil {
		t.err = err
		return id, err
	}
	t.entry = &e
	return id, nil
}

// Entry is the catalog entry of the finished set, nil when it was not finished.
func (t *SetRepo) Entry() *SetEntry { return t.entry }

// Err is the tape failure that stopped the set, if any (a failed VM is not one).
func (t *SetRepo) Err() error { return t.err }

// Fail records a failure of the set's own writing.
func (t *SetRepo) Fail(err error) { t.err = err }
