package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/appliance/esxi"
	"github.com/snapferry/snapferry/appliance/vmjob"
)

// vmFlags are the VM options shared by backup (to a repository or a tape) and replica.
type vmFlags struct {
	vms         string
	excludeVMs  string
	excludeDisk string
	mode        string
	quiesce     bool
	memory      bool
	forceOff    bool
	wait        string
	vmfsRoot    string
	tags        []string
}

// selectVMs opens this host, picks the VMs and fills the vmjob options every VM command shares.
// The caller adds JobID, Host and Progress.
func (a *app) selectVMs(f vmFlags) (*esxi.Driver, []appliance.VM, vmjob.BackupOptions, error) {
	var o vmjob.BackupOptions
	h, err := esxiHost(f.vmfsRoot)
	if err != nil {
		return nil, nil, o, err
	}
	vms, err := appliance.SelectVMs(a.ctx, h, f.vms, f.excludeVMs)
	if err != nil {
		return nil, nil, o, err
	}
	var wait time.Duration
	if f.wait != "" {
		if wait, err = time.ParseDuration(f.wait); err != nil {
			return nil, nil, o, usagef("--wait=%q: %v (example: 10m)", f.wait, err)
		}
	}
	lockDir, err := a.vmLockDir()
	if err != nil {
		return nil, nil, o, err
	}
	dir, err := a.stateDir()
	if err != nil {
		return nil, nil, o, err
	}
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, nil, o, fmt.Errorf("create temp folder %s: %w", tmp, err)
	}
	var excl []string
	if f.excludeDisk != "" {
		excl = strings.Split(f.excludeDisk, ",")
	}
	o = vmjob.BackupOptions{Mode: vmjob.Mode(f.mode), Quiesce: f.quiesce, Memory: f.memory, ForceOff: f.forceOff,
		ExcludeDisks: excl, Tags: f.tags, LockDir: lockDir, LockWait: wait, TempDir: tmp,
		Log: func(m string) { fmt.Fprintf(a.stderr, "%s\n", m) }}
	return h, vms, o, nil
}
