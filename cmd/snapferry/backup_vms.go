package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/appliance/jobrun"
	"github.com/snapferry/snapferry/appliance/vmjob"
)

// backupVMs runs the VM part of `backup`: each VM gets its own repository snapshot; a VM that
// fails does not stop the others.
func (a *app) backupVMs(job *jobrun.Job, f backupFlags) (*backupResult, error) {
	h, err := esxiHost(f.vmfsRoot)
	if err != nil {
		return nil, err
	}
	vms, err := appliance.SelectVMs(a.ctx, h, f.vms, f.excludeVMs)
	if err != nil {
		return nil, err
	}
	var wait time.Duration
	if f.wait != "" {
		if wait, err = time.ParseDuration(f.wait); err != nil {
			return nil, usagef("--wait=%q: %v (example: 10m)", f.wait, err)
		}
	}
	lockDir, err := a.vmLockDir()
	if err != nil {
		return nil, err
	}
	dir, _ := a.stateDir()
	tmp := filepath.Join(dir, "tmp")
	os.MkdirAll(tmp, 0o700)
	r, err := a.openRepo(f.to, true)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	lock, err := r.Lock(a.ctx, false)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock(a.ctx)
	host, _ := os.Hostname()
	prog := newRenderer(a.stderr, a.jsonOut)
	defer prog.Close()
	var excl []string
	if f.excludeDisk != "" {
		excl = strings.Split(f.excludeDisk, ",")
	}
	results := vmjob.Backup(a.ctx, h, r, vms, vmjob.BackupOptions{
		JobID: job.ID, Mode: vmjob.Mode(f.mode), Quiesce: f.quiesce, Memory: f.memory, ForceOff: f.forceOff,
		ExcludeDisks: excl, Host: host, Tags: f.tags, LockDir: lockDir, LockWait: wait, TempDir: tmp,
		Progress: prog, Log: func(m string) { fmt.Fprintf(a.stderr, "%s\n", m) },
	})
	res := &backupResult{}
	for _, vr := range results {
		it := backupItem{Source: vr.VM.Name, Kind: "vm", Mode: f.mode, Stats: vr.Stats, Duration: vr.Duration, Warnings: vr.Warnings}
		if vr.Committed {
			it.Snapshot = vr.Snapshot.String()
		}
		if vr.Err != nil {
			it.Error = vr.Err.Error()
		}
		res.items = append(res.items, it)
	}
	return res, nil
}
