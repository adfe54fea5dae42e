package pidmgr

import (
	"context"
	"fmt"
)

// Removed is a registry entry that Cleanup dropped, with the reason.
type Removed struct {
	Entry Entry `json:"entry"`
	State State `json:"state"` // StateGone or StateRecycled
}

// CleanupResult says what phase 1 did.
type CleanupResult struct {
	Removed     []Removed `json:"removed"`
	Kept        int       `json:"kept"`         // entries whose process still runs
	FileDeleted bool      `json:"file_deleted"` // the registry was left empty and deleted
}

// Cleanup is phase 1: it drops every entry whose process is gone or whose pid now belongs to
// another process (start token differs), and deletes the file when nothing is left. If the
// process table cannot be read, nothing is removed: a transient failure must not forget live
// processes.
func (r *Registry) Cleanup(ctx context.Context) (CleanupResult, error) {
	var res CleanupResult
	err := r.update(ctx, func(es []Entry) ([]Entry, bool, error) {
		res = CleanupResult{}
		snap, err := snapshotFor(ctx, r.table, es)
		if err != nil {
			return nil, false, err
		}
		var keep []Entry
		for _, e := range es {
			if st := snap.entryState(e); st != StateLive {
				res.Removed = append(res.Removed, Removed{Entry: e, State: st})
				continue
			}
			keep = append(keep, e)
		}
		res.Kept = len(keep)
		r.pruneBeats(keep)
		res.FileDeleted = len(keep) == 0 && len(res.Removed) > 0
		return keep, len(res.Removed) > 0, nil
	})
	if err != nil {
		return CleanupResult{}, fmt.Errorf("clean up %s: %w", r.path, err)
	}
	return res, nil
}
