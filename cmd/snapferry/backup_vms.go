package main

import (
	"github.com/snapferry/snapferry/appliance/jobrun"
	"github.com/snapferry/snapferry/appliance/vmjob"
)

// backupVMs runs the VM part of `backup`: each VM gets its own repository snapshot; a VM that
// fails does not stop the others.
func (a *app) backupVMs(job *jobrun.Job, f backupFlags) (*backupResult, error) {
	h, vms, opts, err := a.selectVMs(f.vmFlags)
	if err != nil {
		return nil, err
	}
	t, err := a.openBackupTarget(f.to)
	if err != nil {
		return nil, err
	}
	defer t.Close(a)
	r, host, prog := t.r, t.host, t.prog
	res := &backupResult{}
	opts.JobID, opts.Host, opts.Progress, opts.OnLeftover = job.ID, host, prog, res.events.leftover
	opts.CacheDir, opts.Rehash = a.blockCacheDir(), f.rehash
	results := vmjob.Backup(a.ctx, h, r, vms, opts)
	for _, vr := range results {
		it := backupItem{Source: vr.VM.Name, Kind: "vm", Mode: f.mode, Stats: vr.Stats, Duration: vr.Duration, Warnings: vr.Warnings}
		if vr.Committed {
			it.Snapshot = vr.Snapshot.String()
		}
		if vr.Err != nil {
			it.Error = vr.Err.Error()
			res.events.vmFailed(vr.VM.Name, it.Error)
		}
		res.items = append(res.items, it)
	}
	res.events.checkSpace(a, r, f.lowBytes)
	return res, nil
}
