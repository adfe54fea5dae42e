package main

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/snapferry/snapferry/appliance/libvirt"
	"github.com/snapferry/snapferry/images/repo"
)

// libvirtRestoreFlags are restore's options for libvirt domain snapshots.
type libvirtRestoreFlags struct {
	hv      hypervisorFlags
	diskDir string
	pool    string
	format  string
	instant bool
}

func (a *app) addLibvirtRestoreFlags(fs *pflag.FlagSet, f *libvirtRestoreFlags) {
	fs.StringVar(&f.diskDir, "disk-dir", "", "libvirt domain restore: folder for the disk files and the domain XML")
	fs.StringVar(&f.pool, "pool", "", "libvirt domain restore: storage pool to create the disks in as volumes (a dir pool; with --register, or --disk-dir for the domain XML)")
	fs.StringVar(&f.format, "format", "qcow2", "libvirt domain restore: disk format, qcow2 or raw")
	fs.BoolVar(&f.instant, "instant", false, "libvirt domain restore: start the domain at once on qcow2 overlays backed by the backup (served over NBD by this process), copy the disks in the background, and run until the copy is done")
	a.addHypervisorFlags(fs, &f.hv)
}

// restoreLibvirt recreates a libvirt domain snapshot on this host: disks into --disk-dir or the
// storage pool --pool, the domain XML rewritten for --name and defined with --register, started
// with --power-on.
func (a *app) restoreLibvirt(r *repo.Repository, si repo.SnapshotInfo, f restoreFlags, lf libvirtRestoreFlags, prog *renderer) (int, error) {
	if lf.diskDir == "" && lf.pool == "" {
		return 0, usagef("snapshot %s is a libvirt domain: give --disk-dir=DIR or --pool=NAME for its disks (and --register to define it)", si.ID.Short())
	}
	var wait time.Duration
	if f.wait != "" {
		var err error
		if wait, err = time.ParseDuration(f.wait); err != nil {
			return 0, usagef("--wait=%q: %v (example: 10m)", f.wait, err)
		}
	}
	hv := lf.hv
	if hv.kind == "" {
		hv.kind = "libvirt"
	}
	lv, err := a.libvirtHost(hv)
	if err != nil {
		return 0, err
	}
	defer lv.Close()
	lockDir, err := a.vmLockDir()
	if err != nil {
		return 0, err
	}
	o := libvirt.RestoreOptions{
		Name: f.name, DiskDir: lf.diskDir, Pool: lf.pool, Format: lf.format, Register: f.register, Overwrite: f.overwrite, PowerOn: f.powerOn,
		LockDir: lockDir, LockWait: wait, Progress: prog, Log: func(m string) { fmt.Fprintln(a.stderr, m) },
	}
	var res libvirt.RestoreResult
	if lf.instant {
		o.Format = "" // overlays are qcow2
		in, err := lv.InstantRestore(a.ctx, r, si.Snapshot, o)
		if err != nil {
			return 0, err
		}
		fmt.Fprintf(a.stderr, "domain %s is running from the backup; copying its disks into %s (keep snapferry running until it says they are copied)\n", in.Result.Name, lf.diskDir)
		err = in.Wait(a.ctx)
		fmt.Fprintf(a.stderr, "served %s from the repository\n", humanBytes(in.BytesServed()))
		if err != nil {
			return 0, err
		}
		res = in.Result
	} else if res, err = lv.Restore(a.ctx, r, si.Snapshot, o); err != nil {
		return 0, err
	}
	if a.jsonOut {
		a.printJSON(res)
	} else {
		where := lf.diskDir
		if lf.pool != "" {
			where = "storage pool " + lf.pool
		}
		fmt.Fprintf(a.stdout, "restored domain %s to %s", res.Name, where)
		if res.Defined {
			fmt.Fprintf(a.stdout, ", defined as %s", res.UUID)
		}
		fmt.Fprintln(a.stdout)
	}
	return len(res.Disks), nil
}
