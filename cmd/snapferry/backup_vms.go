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
	return a.backupInto(f, false, func(t *backupTarget) (*backupResult, error) {
		res := &backupResult{}
		opts.JobID, opts.Host, opts.Progress, opts.OnLeftover = job.ID, t.host, t.prog, res.events.leftover
		opts.CacheDir, opts.Rehash = a.blockCacheDir(), f.rehash
		res.addVMResults(vmjob.Backup(a.ctx, h, t.r, vms, opts), f.mode)
		return res, nil
	})
}
