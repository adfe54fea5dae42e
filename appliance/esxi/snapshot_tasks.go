package esxi

import (
	"context"
	"fmt"
	"time"

	"github.com/snapferry/snapferry/appliance"
)

// CreateSnapshot runs snapshot.create and polls until the snapshot shows in snapshot.get. If the
// host's createSnapshot task ends without it, the snapshot failed.
func (d *Driver) CreateSnapshot(ctx context.Context, id, name, description string, opts appliance.SnapshotOptions) (appliance.SnapshotInfo, error) {
	op := fmt.Sprintf("snapshot VM %s as %q", id, name)
	before, err := d.Snapshots(ctx, id)
	if err != nil {
		return appliance.SnapshotInfo{}, fmt.Errorf("%s: %w", op, err)
	}
	known := map[string]bool{}
	for _, s := range before {
		known[s.ID] = true
	}
	if _, err := d.vim(ctx, op, "vmsvc/snapshot.create", id, name, description, bit(opts.Memory), bit(opts.Quiesce)); err != nil {
		return appliance.SnapshotInfo{}, err
	}
	var found appliance.SnapshotInfo
	err = d.poll(ctx, op, func() (bool, error) {
		snaps, err := d.Snapshots(ctx, id)
		if err != nil {
			return false, err
		}
		for _, s := range snaps {
			if s.Name == name && !known[s.ID] {
				found = s
				return true, nil
			}
		}
		running, err := d.taskRunning(ctx, id, "createSnapshot")
		if err != nil {
			return false, err
		}
		if !running {
			// One more look: the task may have ended between the two commands.
			if snaps, err = d.Snapshots(ctx, id); err != nil {
				return false, err
			}
			for _, s := range snaps {
				if s.Name == name && !known[s.ID] {
					found = s
					return true, nil
				}
			}
			return false, fmt.Errorf("%s: the host's task ended without the snapshot (see the VM's events on the host)", op)
		}
		return false, nil
	})
	return found, err
}

// RemoveSnapshot removes one snapshot (never its children) in the syntax the host takes, and
// polls until it is gone.
func (d *Driver) RemoveSnapshot(ctx context.Context, id string, snap appliance.SnapshotInfo) error {
	op := fmt.Sprintf("remove snapshot %q (id %s) of VM %s", snap.Name, snap.ID, id)
	syntax, err := d.removeSyntax(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if syntax == RemoveByLevel {
		// Level and index shift as snapshots come and go: take them fresh.
		snaps, err := d.Snapshots(ctx, id)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		cur, ok := findSnapshot(snaps, snap.ID)
		if !ok {
			return fmt.Errorf("%s: %w", op, appliance.ErrNotFound)
		}
		snap = cur
	}
	if _, err := d.vim(ctx, op, RemoveArgs(syntax, id, snap)...); err != nil {
		return err
	}
	return d.poll(ctx, op, func() (bool, error) {
		snaps, err := d.Snapshots(ctx, id)
		if err != nil {
			return false, err
		}
		_, still := findSnapshot(snaps, snap.ID)
		return !still, nil
	})
}

func findSnapshot(snaps []appliance.SnapshotInfo, id string) (appliance.SnapshotInfo, bool) {
	for _, s := range snaps {
		if s.ID == id {
			return s, true
		}
	}
	return appliance.SnapshotInfo{}, false
}

// removeSyntax asks the host once which snapshot.remove syntax it takes: from `vim-cmd help
// vmsvc/snapshot.remove`, else from the usage that snapshot.remove without arguments prints.
func (d *Driver) removeSyntax(ctx context.Context) (RemoveSyntax, error) {
	d.syntaxOnce.Do(func() {
		// Both commands may exit non-zero while printing the usage: only the text matters.
		help, _ := d.run(ctx, d.cfg.VimCmd, "help", "vmsvc/snapshot.remove")
		d.syntax, d.syntaxErr = ParseRemoveUsage(help)
		if d.syntaxErr == nil {
			return
		}
		bare, err := d.run(ctx, d.cfg.VimCmd, "vmsvc/snapshot.remove")
		if err != nil {
			bare += "\n" + err.Error() // the usage may come on stderr, which run puts in the error
		}
		d.syntax, d.syntaxErr = ParseRemoveUsage(bare)
	})
	return d.syntax, d.syntaxErr
}

// taskRunning reports whether the VM has a running task of the given operation.
func (d *Driver) taskRunning(ctx context.Context, id, op string) (bool, error) {
	out, err := d.vim(ctx, "list tasks of VM "+id, "vmsvc/get.tasklist", id)
	if err != nil {
		return false, err
	}
	tasks, err := ParseTaskList(out)
	if err != nil {
		return false, err
	}
	for _, t := range tasks {
		if t.Op == op {
			return true, nil
		}
	}
	return false, nil
}

// poll calls done every PollInterval until it reports true, fails, the context ends or
// TaskTimeout passes (ErrTaskTimeout).
func (d *Driver) poll(ctx context.Context, op string, done func() (bool, error)) error {
	deadline := time.Now().Add(d.cfg.TaskTimeout)
	for {
		ok, err := done()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: waited %s: %w", op, d.cfg.TaskTimeout, appliance.ErrTaskTimeout)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", op, ctx.Err())
		case <-time.After(d.cfg.PollInterval):
		}
	}
}

func bit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
