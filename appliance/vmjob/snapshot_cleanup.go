package vmjob

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/snapferry/snapferry/appliance"
)

// removeLeftovers removes the VM snapshots that killed earlier runs left: ours only, found by
// name, newest first so each removal merges one delta. It returns the user's snapshots.
func removeLeftovers(ctx context.Context, h appliance.Host, vm appliance.VM, o *BackupOptions) ([]appliance.SnapshotInfo, error) {
	snaps, err := h.Snapshots(ctx, vm.ID)
	if err != nil {
		return nil, err
	}
	var user []appliance.SnapshotInfo
	for i := len(snaps) - 1; i >= 0; i-- {
		s := snaps[i]
		if !strings.HasPrefix(s.Name, SnapshotPrefix) {
			user = append([]appliance.SnapshotInfo{s}, user...)
			continue
		}
		o.logf("VM %s: removing snapshot %q left by an earlier snapferry run", vm.Name, s.Name)
		if o.OnLeftover != nil {
			o.OnLeftover(vm, s.Name)
		}
		if err := removeWithRetry(ctx, h, vm, s, o); err != nil {
			return nil, fmt.Errorf("remove leftover snapshot %q: %w", s.Name, err)
		}
	}
	return user, nil
}

// removeWithRetry removes one of our snapshots, retrying a few times: consolidation fails
// transiently on busy hosts (file locks). It ignores the job's cancellation, because a cancelled
// backup must still remove its snapshot, but gives up after a bound.
func removeWithRetry(ctx context.Context, h appliance.Host, vm appliance.VM, snap appliance.SnapshotInfo, o *BackupOptions) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Minute)
	defer cancel()
	var err error
	for attempt := 1; attempt <= o.RemoveAttempts; attempt++ {
		if err = h.RemoveSnapshot(ctx, vm.ID, snap); err == nil {
			return nil
		}
		if attempt < o.RemoveAttempts {
			o.logf("VM %s: removing snapshot %q failed (attempt %d of %d): %v", vm.Name, snap.Name, attempt, o.RemoveAttempts, err)
			if serr := o.Clock.Sleep(ctx, o.RetryDelay*time.Duration(attempt)); serr != nil {
				break
			}
		}
	}
	return err
}
