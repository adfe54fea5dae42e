package repo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/snapferry/snapferry/images/store"
)

// RetentionReport counts what RenewRetention did.
type RetentionReport struct {
	Retention time.Duration // the store's retention (0: it retains nothing, nothing was done)
	Snapshots int           // snapshots younger than the retention
	Files     int           // files they need: their packs and manifests, every index file, config, keys
	Renewed   int           // files whose retention was extended
	Until     time.Time     // the date renewed files are now retained until
}

// RenewRetention extends the retention of every file the snapshots younger than the store's
// retention still need, so none of them becomes deletable while such a snapshot uses it: on an
// Object Lock store a file is retained for the retention period after it was written, and a
// pack written long ago is still used by yesterday's snapshot. A file written less than half a
// retention period ago has at least half of it left and is skipped; others are retained until
// now plus the retention. On a store without retention (store.Retainer) it does nothing. Run it
// after backups (`snapferry retain`, daily from cron); it takes no lock and changes no file.
func (r *Repository) RenewRetention(ctx context.Context) (*RetentionReport, error) {
	rep := &RetentionReport{}
	ret, ok := store.RetainerOf(r.be)
	if !ok {
		return rep, nil
	}
	period, err := ret.Retention(ctx)
	if err != nil || period <= 0 {
		return rep, err
	}
	now := r.opts.Clock.Now()
	rep.Retention, rep.Until = period, now.Add(period)
	due := func(written time.Time) bool { return written.IsZero() || now.Sub(written) > period/2 }

	snaps, err := r.ListSnapshots(ctx, SnapshotFilter{})
	if err != nil {
		return nil, fmt.Errorf("renew retention: %w", err)
	}
	recent := map[ID]bool{}
	packs := map[ID]bool{}
	seen := map[ID]struct{}{}
	var walkErr error
	for _, si := range snaps {
		if !si.Snapshot.Time.After(now.Add(-period)) {
			continue
		}
		recent[si.ID] = true
		err := r.walkSnapshot(ctx, si.Snapshot, seen, refVisitor{
			blob: func(_ BlobType, id ID) {
				if p, ok := r.packOf(id); ok {
					packs[p] = true
				}
			},
			fail: func(what string, id ID, err error) {
				walkErr = errors.Join(walkErr, fmt.Errorf("snapshot %s: %s %s: %w", si.ID.Short(), what, id.Short(), err))
			},
		})
		if err != nil {
			return nil, fmt.Errorf("renew retention: %w", err)
		}
	}
	rep.Snapshots = len(recent)
	want := func(k store.Kind, name string) bool {
		id, err := ParseID(name)
		switch k {
		case store.KindData:
			return err == nil && packs[id]
		case store.KindSnapshots:
			return err == nil && recent[id]
		}
		return k == store.KindConfig || k == store.KindIndex || k == store.KindKeys
	}
	for _, k := range []store.Kind{store.KindConfig, store.KindKeys, store.KindIndex, store.KindSnapshots, store.KindData} {
		var todo []store.Handle
		err := r.be.List(ctx, k, func(fi store.FileInfo) error {
			if !want(k, fi.Name) {
				return nil
			}
			rep.Files++
			if due(fi.ModTime) {
				todo = append(todo, store.Handle{Kind: k, Name: fi.Name})
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("renew retention: %w", err)
		}
		for _, h := range todo {
			if err := ret.Retain(ctx, h, rep.Until); err != nil {
				return rep, fmt.Errorf("renew retention: %w", err)
			}
			rep.Renewed++
		}
	}
	if walkErr != nil {
		return rep, fmt.Errorf("renew retention: some blobs could not be traced to their packs (run `snapferry check`): %w", walkErr)
	}
	return rep, nil
}

// packOf names the pack holding blob id, if an index file names it.
func (r *Repository) packOf(id ID) (ID, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.idx.lookup(id)
	if !ok || e.pack == pendingPack || int(e.pack) >= len(r.idx.packs) {
		return ID{}, false
	}
	return r.idx.packs[e.pack], true
}
