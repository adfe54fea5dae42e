package vmjob

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/transfer/replica"
)

// PushFunc sends one replica set as one update: the CLI's transfer/replica.Push over its SSH
// session. It runs while the VM is frozen, so the files it is given do not change under it.
type PushFunc func(ctx context.Context, set string, files []replica.File) (replica.Stats, error)

// ReplicaResult is the outcome of one VM's replica update.
type ReplicaResult struct {
	VM       appliance.VM
	Set      string // the folder on the far side (the VM's name)
	Mode     string // how the VM was read (hot, cold) when the driver decides it; "" for --mode
	Done     bool   // the far side committed the update
	Partial  bool   // some disks were skipped (see Warnings)
	Warnings []string
	Stats    replica.Stats
	Err      error // the VM failed (nothing committed), or cleanup after the commit failed
	Duration time.Duration
}

// Replica updates the replica of each VM in turn; a VM that fails does not stop the others.
func Replica(ctx context.Context, h appliance.Host, vms []appliance.VM, push PushFunc, o BackupOptions) []ReplicaResult {
	out := make([]ReplicaResult, 0, len(vms))
	for _, vm := range vms {
		if ctx.Err() != nil {
			out = append(out, ReplicaResult{VM: vm, Set: vm.Name, Err: fmt.Errorf("replicate VM %s: %w", vm.Name, ctx.Err())})
			continue
		}
		out = append(out, ReplicaVM(ctx, h, vm, push, o))
	}
	return out
}

// ReplicaVM freezes vm as o.Mode says (Freeze) and pushes a ready-to-run copy of it into the set
// named like the VM on the far side (see replicaLayout): the flat extents as sparse block-diff
// updates, descriptors naming them, config files with the .vmx pointing at those descriptors.
// Tags, Host and Progress of o are not used.
func ReplicaVM(ctx context.Context, h appliance.Host, vm appliance.VM, push PushFunc, o BackupOptions) ReplicaResult {
	o.defaults()
	start := o.Clock.Now()
	res := ReplicaResult{VM: vm, Set: vm.Name}
	err := checkSetName(vm.Name)
	if err == nil {
		err = Freeze(ctx, h, vm, o, func(fz *Frozen) error {
			res.Partial = fz.Partial
			res.Warnings = append(res.Warnings, fz.Warnings...)
			return pushFrozen(ctx, fz, push, &o, &res)
		})
	}
	if err != nil {
		res.Err = fmt.Errorf("replicate VM %s: %w", vm.Name, err)
	}
	res.Duration = o.Clock.Now().Sub(start)
	return res
}

// checkSetName refuses VM names that cannot be a folder on the far side.
func checkSetName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("the VM name %q cannot be the replica's folder on the far side (empty, '.', '..' or has '/'): rename the VM", name)
	}
	return nil
}

// pushFrozen writes the replica layout of a frozen VM into a staging folder and pushes it.
func pushFrozen(ctx context.Context, fz *Frozen, push PushFunc, o *BackupOptions, res *ReplicaResult) (err error) {
	dir, files, notes, err := replicaLayout(fz, o.TempDir)
	if err != nil {
		return err
	}
	defer func() {
		if rerr := removeStage(dir); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	for _, n := range notes {
		o.logf("VM %s: %s", fz.VM.Name, n)
	}
	o.logf("VM %s: pushing %d disk(s) and %d file(s) to replica %q", fz.VM.Name, len(fz.Disks), len(files)-len(fz.Disks), res.Set)
	st, err := push(ctx, res.Set, files)
	res.Stats = st
	if err != nil {
		return err
	}
	res.Done = true
	return nil
}
