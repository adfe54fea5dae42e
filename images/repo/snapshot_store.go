package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/snapferry/snapferry/images/store"
)

// SnapshotVersion is the manifest version SaveSnapshot writes.
const SnapshotVersion = 1

// SnapshotInfo is a snapshot with its id.
type SnapshotInfo struct {
	ID       ID        `json:"id"`
	Snapshot *Snapshot `json:"snapshot"`
}

// SnapshotFilter narrows FindSnapshot and ListSnapshots; empty fields match everything, except
// that an empty Kind leaves out host-state snapshots: `latest`, listings and forget policies
// are about backups, and a host's state snapshot, saved after every backup run, would otherwise
// be the latest of everything. Ask for them with Kind: SnapshotHostState. (check and prune
// walk every snapshot file, filter or not.)
type SnapshotFilter struct {
	Host   string
	Source string
	Kind   string
	Tag    string
}

func (f SnapshotFilter) match(s *Snapshot) bool {
	kind := s.Kind == f.Kind || f.Kind == "" && s.Kind != SnapshotHostState
	return (f.Host == "" || s.Host == f.Host) && (f.Source == "" || s.Source == f.Source) &&
		kind && (f.Tag == "" || slices.Contains(s.Tags, f.Tag))
}

// SaveSnapshot commits a snapshot: it first flushes open packs and the index (crash-safety order:
// packs, then index, then snapshot), checks that the block maps and tree it names are stored and
// that the locks this value holds were not lost, and writes the manifest. The id is the BLAKE3 hash of the manifest bytes.
func (r *Repository) SaveSnapshot(ctx context.Context, sn *Snapshot) (ID, error) {
	if err := r.Flush(ctx); err != nil {
		return ID{}, fmt.Errorf("save snapshot of %s: %w", sn.Source, err)
	}
	for _, d := range sn.Disks {
		for i, c := range d.Map {
			if !r.HasBlob(TreeBlob, c) {
				return ID{}, fmt.Errorf("save snapshot of %s: disk %s map chunk %d (%s): %w",
					sn.Source, d.Name, i, c.Short(), ErrBlobNotFound)
			}
		}
	}
	for i := range sn.Disks {
		if err := sn.Disks[i].checkNames(); err != nil {
			return ID{}, fmt.Errorf("save snapshot of %s: %w", sn.Source, err)
		}
	}
	if sn.Tree != nil && !r.HasBlob(TreeBlob, *sn.Tree) {
		return ID{}, fmt.Errorf("save snapshot of %s: tree %s: %w", sn.Source, sn.Tree.Short(), ErrBlobNotFound)
	}
	// Both checks ask the store; over a link they share one round trip.
	var lockErr error
	var verified sync.WaitGroup
	verified.Go(func() { lockErr = r.verifyLocks(ctx) })
	err := r.recheckIndex(ctx, sn)
	verified.Wait()
	if err != nil {
		return ID{}, fmt.Errorf("save snapshot of %s: %w", sn.Source, err)
	}
	if lockErr != nil {
		return ID{}, fmt.Errorf("save snapshot of %s: %w", sn.Source, lockErr)
	}
	if sn.Version == 0 {
		sn.Version = SnapshotVersion
	}
	// Retention groups by host and sorts by time: a manifest without them would never expire.
	if sn.Time.IsZero() {
		sn.Time = r.opts.Clock.Now().UTC()
	}
	if sn.Host == "" {
		host, err := r.hostname()
		if err != nil {
			return ID{}, fmt.Errorf("save snapshot of %s: %w", sn.Source, err)
		}
		sn.Host = host
	}
	b, err := json.Marshal(sn)
	if err != nil {
		return ID{}, fmt.Errorf("save snapshot of %s: encode: %w", sn.Source, err)
	}
	r.hook(HookSnapshotSave)
	id, err := saveFile(ctx, r.be, store.KindSnapshots, b, r.crypt)
	if err != nil {
		return ID{}, fmt.Errorf("save snapshot of %s: %w", sn.Source, err)
	}
	r.hook(HookSnapshotSaved)
	// Once more after the write: a prune that replaced the index between the check above and
	// the write did not see this snapshot (rescueNewSnapshots lists snapshots after it removed
	// the old index files), so what it dropped for lack of a user is indexed again here, while
	// this run's lock still keeps prune from deleting it.
	if err := r.recheckIndex(ctx, sn); err != nil {
		return id, fmt.Errorf("save snapshot of %s: snapshot %s written, but: %w", sn.Source, id.Short(), err)
	}
	return id, nil
}

// decodeSnapshot parses a manifest, rejecting versions this build does not know.
func decodeSnapshot(b []byte) (*Snapshot, error) {
	var sn Snapshot
	if err := json.Unmarshal(b, &sn); err != nil {
		return nil, fmt.Errorf("decode snapshot: %v: %w", err, ErrCorrupt)
	}
	if sn.Version > SnapshotVersion {
		return nil, fmt.Errorf("snapshot format %d is newer than this snapferry supports (%d); upgrade snapferry: %w",
			sn.Version, SnapshotVersion, ErrNewerFormat)
	}
	if sn.Version < 1 {
		return nil, fmt.Errorf("decode snapshot: missing version: %w", ErrCorrupt)
	}
	for i := range sn.Disks {
		if err := sn.Disks[i].checkNames(); err != nil {
			return nil, fmt.Errorf("decode snapshot: %w", err)
		}
	}
	return &sn, nil
}

// LoadSnapshot reads and verifies one snapshot manifest.
func (r *Repository) LoadSnapshot(ctx context.Context, id ID) (*Snapshot, error) {
	b, err := loadFile(ctx, r.be, store.Handle{Kind: store.KindSnapshots, Name: id.String()}, r.crypt)
	if errors.Is(err, store.ErrNotExist) {
		return nil, fmt.Errorf("load snapshot %s: %w", id.Short(), ErrSnapshotNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load snapshot %s: %w", id.Short(), err)
	}
	sn, err := decodeSnapshot(b)
	if err != nil {
		return nil, fmt.Errorf("load snapshot %s: %w", id.Short(), err)
	}
	return sn, nil
}

// loadListedSnapshot loads a snapshot a listing named. One removed since the listing (a forget,
// or a host-state save replacing its older snapshot) gives nil and no error: it needs nothing
// any more and is not damaged, for every walk over listed snapshots (list, check, prune, repair).
func (r *Repository) loadListedSnapshot(ctx context.Context, id ID) (*Snapshot, error) {
	sn, err := r.LoadSnapshot(ctx, id)
	if errors.Is(err, ErrSnapshotNotFound) {
		return nil, nil
	}
	return sn, err
}

// ListSnapshots loads every snapshot matching f, oldest first.
func (r *Repository) ListSnapshots(ctx context.Context, f SnapshotFilter) ([]SnapshotInfo, error) {
	ids, err := listIDs(ctx, r.be, store.KindSnapshots)
	if err != nil {
		return nil, err
	}
	loaded := make([]*Snapshot, len(ids))
	err = forEachParallel(ctx, storeWorkers, len(ids), func(ctx context.Context, i int) error {
		sn, err := r.loadListedSnapshot(ctx, ids[i])
		loaded[i] = sn
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]SnapshotInfo, 0, len(ids))
	for i, sn := range loaded {
		if sn != nil && f.match(sn) {
			out = append(out, SnapshotInfo{ID: ids[i], Snapshot: sn})
		}
	}
	sortSnapshots(out)
	return out, nil
}

func sortSnapshots(s []SnapshotInfo) {
	slices.SortFunc(s, func(a, b SnapshotInfo) int {
		if c := a.Snapshot.Time.Compare(b.Snapshot.Time); c != 0 {
			return c
		}
		return strings.Compare(a.ID.String(), b.ID.String())
	})
}

// FindSnapshot resolves a user's reference: "latest" (the newest matching f), or a full id or
// unique id prefix (f must also match). Errors wrap ErrSnapshotNotFound or ErrAmbiguousSnapshot
// and say what to do.
func (r *Repository) FindSnapshot(ctx context.Context, ref string, f SnapshotFilter) (SnapshotInfo, error) {
	ref = strings.ToLower(strings.TrimSpace(ref))
	if ref == "" {
		return SnapshotInfo{}, fmt.Errorf("find snapshot: empty reference (give an id, a prefix, or latest): %w", ErrSnapshotNotFound)
	}
	if ref == "latest" {
		all, err := r.ListSnapshots(ctx, f)
		if err != nil {
			return SnapshotInfo{}, err
		}
		if len(all) == 0 {
			return SnapshotInfo{}, fmt.Errorf("find latest snapshot%s: %w", f.describe(), ErrSnapshotNotFound)
		}
		return all[len(all)-1], nil
	}
	if strings.Trim(ref, "0123456789abcdef") != "" {
		return SnapshotInfo{}, fmt.Errorf("find snapshot %q: not a hex id prefix or latest: %w", ref, ErrSnapshotNotFound)
	}
	ids, err := listIDs(ctx, r.be, store.KindSnapshots)
	if err != nil {
		return SnapshotInfo{}, err
	}
	var matches []SnapshotInfo
	for _, id := range ids {
		if !strings.HasPrefix(id.String(), ref) {
			continue
		}
		sn, err := r.LoadSnapshot(ctx, id)
		if err != nil {
			return SnapshotInfo{}, err
		}
		// An id names one snapshot: host-state snapshots, left out of `latest` and listings,
		// are found by their id like any other.
		byID := f
		if byID.Kind == "" {
			byID.Kind = sn.Kind
		}
		if byID.match(sn) {
			matches = append(matches, SnapshotInfo{ID: id, Snapshot: sn})
		}
	}
	switch len(matches) {
	case 0:
		return SnapshotInfo{}, fmt.Errorf("find snapshot %s%s: %w", ref, f.describe(), ErrSnapshotNotFound)
	case 1:
		return matches[0], nil
	}
	sortSnapshots(matches)
	names := make([]string, len(matches))
	for i, m := range matches {
		names[i] = m.ID.Short()
	}
	return SnapshotInfo{}, fmt.Errorf("find snapshot %s: %d snapshots match (%s); give more digits: %w",
		ref, len(matches), strings.Join(names, ", "), ErrAmbiguousSnapshot)
}

func (f SnapshotFilter) describe() string {
	var parts []string
	for _, kv := range [][2]string{{"host", f.Host}, {"source", f.Source}, {"kind", f.Kind}, {"tag", f.Tag}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+kv[1])
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, " ") + ")"
}

// RemoveSnapshot deletes a snapshot manifest; its data stays until prune.
func (r *Repository) RemoveSnapshot(ctx context.Context, id ID) error {
	err := r.be.Remove(ctx, store.Handle{Kind: store.KindSnapshots, Name: id.String()})
	if errors.Is(err, store.ErrNotExist) {
		return fmt.Errorf("remove snapshot %s: %w", id.Short(), ErrSnapshotNotFound)
	}
	if err != nil {
		return fmt.Errorf("remove snapshot %s: %w", id.Short(), err)
	}
	return nil
}
