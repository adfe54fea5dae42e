package main

import (
	"fmt"
	"time"

	"github.com/snapferry/snapferry/appliance/vmjob"
	"github.com/snapferry/snapferry/images/repo"
)

// restoreVM recreates a VM snapshot on a datastore of this host: thin disks, descriptors and
// config with paths rewritten for the new name, optionally registered and powered on. An
// existing VM of that name is only replaced with --overwrite.
func (a *app) restoreVM(r *repo.Repository, si repo.SnapshotInfo, f restoreFlags, prog *renderer) (int, error) {
	var wait time.Duration
	if f.wait != "" {
		var err error
		if wait, err = time.ParseDuration(f.wait); err != nil {
			return 0, usagef("--wait=%q: %v (example: 10m)", f.wait, err)
		}
	}
	h, err := esxiHost(f.vmfsRoot)
	if err != nil {
		return 0, err
	}
	lockDir, err := a.vmLockDir()
	if err != nil {
		return 0, err
	}
	res, err := vmjob.Restore(a.ctx, h, r, si.Snapshot, vmjob.RestoreOptions{
		Datastore: f.datastore, Name: f.name, Register: f.register, Overwrite: f.overwrite, PowerOn: f.powerOn, PowerOff: f.powerOff,
		LockDir: lockDir, LockWait: wait, Progress: prog, Log: func(m string) { fmt.Fprintln(a.stderr, m) },
	})
	if err != nil {
		return 0, err
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(a.stderr, "warning: %s\n", w)
	}
	if a.jsonOut {
		a.printJSON(res)
	} else {
		fmt.Fprintf(a.stdout, "restored VM %s to %s", res.Name, res.Dir)
		if res.ID != "" {
			fmt.Fprintf(a.stdout, ", registered as %s", res.ID)
		}
		fmt.Fprintln(a.stdout)
	}
	return 1 + len(res.Disks), nil
}
