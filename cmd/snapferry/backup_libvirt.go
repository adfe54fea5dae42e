package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/snapferry/snapferry/appliance/jobrun"
	"github.com/snapferry/snapferry/appliance/libvirt"
	"github.com/snapferry/snapferry/appliance/vmjob"
)

// backupLibvirt runs `backup --vm` on a libvirt host: each domain through a libvirt backup job
// (dirty-bitmap incrementals, appliance/libvirt), one repository snapshot per domain.
func (a *app) backupLibvirt(job *jobrun.Job, f backupFlags, lv *libvirt.Driver) (*backupResult, error) {
	vms, wait, lockDir, err := a.libvirtSelection(lv, f.vms, f.excludeVMs, f.wait) // replica_libvirt.go
	if err != nil {
		return nil, err
	}
	var excl []string
	if f.excludeDisk != "" {
		excl = strings.Split(f.excludeDisk, ",")
	}
	return a.backupInto(f, false, func(t *backupTarget) (*backupResult, error) {
		id := t.r.Config().ID
		o := libvirt.BackupOptions{
			JobID: job.ID, Chain: id[:min(12, len(id))], Host: t.host, Tags: f.tags, ExcludeDisks: excl,
			Quiesce: f.quiesce, ScratchDir: os.TempDir(), LockDir: lockDir, LockWait: wait, Progress: t.prog,
			Log: func(m string) { fmt.Fprintln(a.stderr, m) },
		}
		res := &backupResult{}
		res.addVMResults(lv.Backup(a.ctx, t.r, vms, o), f.mode)
		return res, nil
	})
}

// addVMResults adds one item per VM backup (ESXi or libvirt) and its failure event.
func (res *backupResult) addVMResults(results []vmjob.Result, mode string) {
	for _, vr := range results {
		it := backupItem{Source: vr.VM.Name, Kind: "vm", Mode: mode, Stats: vr.Stats, Duration: vr.Duration, Warnings: vr.Warnings}
		if vr.Committed {
			it.Snapshot = vr.Snapshot.String()
		}
		if vr.Err != nil {
			it.Error = vr.Err.Error()
			res.events.vmFailed(vr.VM.Name, it.Error)
		}
		res.items = append(res.items, it)
	}
}
