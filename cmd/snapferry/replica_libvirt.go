package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/appliance/jobrun"
	"github.com/snapferry/snapferry/appliance/libvirt"
	"github.com/snapferry/snapferry/transfer/replica"
	"github.com/snapferry/snapferry/transfer/wire"
)

// pushLibvirtReplicas is `replica --vm` on a libvirt host: each domain's mirror (raw disks and
// its rewritten XML) is updated through appliance/libvirt, sending only the blocks the replica's
// own dirty bitmap marks once a first run is complete.
func (a *app) pushLibvirtReplicas(job *jobrun.Job, list, to string, f *replicaVMFlags, lv *libvirt.Driver) (*backupResult, error) {
	vms, wait, lockDir, err := a.libvirtSelection(lv, list, f.excludeVMs, f.wait)
	if err != nil {
		return nil, err
	}
	if err := distinctNames(vms); err != nil {
		return nil, err
	}
	state, err := a.stateDir()
	if err != nil {
		return nil, err
	}
	sess, server, closeLink, err := a.replicaLink(to)
	if err != nil {
		return nil, err
	}
	defer closeLink()
	prog := a.renderer()
	defer prog.Close()
	push := func(ctx context.Context, set string, files []replica.File, onDisk func(replica.DiskReport)) (replica.Stats, error) {
		var total int64
		for _, f := range files {
			if f.Blocks != nil {
				total += f.Blocks.Size()
			}
		}
		return pushSet(ctx, prog, sess, set, files, total, replica.Options{Compression: a.compression,
			Marks: server.HasCap(wire.CapReplicaMark), DiskDone: onDisk})
	}
	var excl []string
	if f.excludeDisk != "" {
		excl = strings.Split(f.excludeDisk, ",")
	}
	o := libvirt.ReplicaOptions{
		JobID: job.ID, Target: to, FarRoot: server.Root, StateDir: filepath.Join(state, "replicas"), ExcludeDisks: excl,
		Quiesce: f.quiesce, ScratchDir: os.TempDir(), LockDir: lockDir, LockWait: wait,
		Log: func(m string) { fmt.Fprintln(a.stderr, m) },
	}
	return a.replicaResults(lv.Replica(a.ctx, vms, push, o), "hot"), nil
}

// libvirtSelection is what a libvirt VM job starts with: the selected domains, --wait parsed and
// the folder of the per-VM locks.
func (a *app) libvirtSelection(lv *libvirt.Driver, list, exclude, waitFlag string) ([]appliance.VM, time.Duration, string, error) {
	vms, err := appliance.SelectVMs(a.ctx, lv, list, exclude)
	if err != nil {
		return nil, 0, "", err
	}
	var wait time.Duration
	if waitFlag != "" {
		if wait, err = time.ParseDuration(waitFlag); err != nil {
			return nil, 0, "", usagef("--wait=%q: %v (example: 10m)", waitFlag, err)
		}
	}
	lockDir, err := a.vmLockDir()
	return vms, wait, lockDir, err
}
