package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/appliance/jobrun"
	"github.com/snapferry/snapferry/appliance/vmjob"
	"github.com/snapferry/snapferry/transfer/replica"
)

// replicaVMFlags are the VM options of `snapferry replica --vm` (their meanings are backup's).
type replicaVMFlags struct {
	excludeVMs  string
	excludeDisk string
	mode        string
	quiesce     bool
	forceOff    bool
	wait        string
	vmfsRoot    string
	hv          hypervisorFlags // libvirt hosts: replica_libvirt.go
}

func addReplicaVMFlags(a *app, fs *pflag.FlagSet) *replicaVMFlags {
	f := &replicaVMFlags{}
	fs.StringVar(&f.excludeVMs, "exclude-vm", "", "VMs to leave out")
	fs.StringVar(&f.excludeDisk, "exclude-disk", "", "disks to leave out: vmdk1,scsi0:2,name.vmdk")
	fs.StringVar(&f.mode, "mode", "hot", "hot (snapshot), warm (shut down, snapshot, power on) or cold (shut down)")
	fs.BoolVar(&f.quiesce, "quiesce", false, "quiesce the guest file systems (VMware Tools on ESXi, the QEMU guest agent on libvirt)")
	fs.BoolVar(&f.forceOff, "force-off", false, "power off hard when the guest does not shut down")
	fs.StringVar(&f.wait, "wait", "", "wait this long for a VM another job is using (e.g. 10m)")
	a.addVMFSFlag(fs, &f.vmfsRoot)
	a.addHypervisorFlags(fs, &f.hv)
	return f
}

// vmOnlyFlags refuses the VM options on a replica of PATHs, where they would mean nothing.
func vmOnlyFlags(fs *pflag.FlagSet) error {
	for _, name := range []string{"exclude-vm", "exclude-disk", "mode", "quiesce", "force-off", "wait", "vmfs-root", "hypervisor", "libvirt-uri"} {
		if fs.Changed(name) {
			return usagef("--%s is an option of VM replicas (--vm=NAMES); leave it out when replicating PATHs", name)
		}
	}
	return nil
}

// replicaVMs is `snapferry replica --vm=NAMES --to=ssh://host/path`: each VM is frozen as --mode
// says and pushed as a ready-to-run copy into the folder named like it on the far side. A VM
// that fails does not stop the others; skipped disks make the run partial (exit 3).
func (a *app) replicaVMs(list, to, origin string, f *replicaVMFlags) error {
	switch f.mode {
	case "hot", "warm", "cold":
	default:
		return usagef("--mode=%q: want hot, warm or cold", f.mode)
	}
	if f.wait != "" { // checked before the job starts; selectVMs uses it
		if _, err := time.ParseDuration(f.wait); err != nil {
			return usagef("--wait=%q: %v (example: 10m)", f.wait, err)
		}
	}
	job, err := a.beginJob("replica", origin, strings.Split(list, ","), nil)
	if err != nil {
		return err
	}
	var res *backupResult
	lv, err := a.libvirtHost(f.hv)
	if err == nil && lv != nil {
		defer lv.Close()
		res, err = a.pushLibvirtReplicas(job, list, to, f, lv)
	} else if err == nil {
		res, err = a.pushVMReplicas(job, list, to, f)
	}
	if err == nil && res.partial() {
		err = res.outcome()
	}
	if a.jsonOut && res != nil {
		a.printBackupResult(res)
	}
	return a.endJob(job, err, res.list())
}

func (a *app) pushVMReplicas(job *jobrun.Job, list, to string, f *replicaVMFlags) (*backupResult, error) {
	h, vms, opts, err := a.selectVMs(vmFlags{vms: list, excludeVMs: f.excludeVMs, excludeDisk: f.excludeDisk,
		mode: f.mode, quiesce: f.quiesce, forceOff: f.forceOff, wait: f.wait, vmfsRoot: f.vmfsRoot})
	if err != nil {
		return nil, err
	}
	if err := distinctNames(vms); err != nil {
		return nil, err
	}
	sess, _, closeLink, err := a.replicaLink(to)
	if err != nil {
		return nil, err
	}
	defer closeLink()
	prog := a.renderer()
	defer prog.Close()
	push := func(ctx context.Context, set string, files []replica.File) (replica.Stats, error) {
		return pushSet(ctx, prog, sess, set, files, diskBytes(files), replica.Options{Compression: a.compression})
	}
	opts.JobID = job.ID
	return a.replicaResults(vmjob.Replica(a.ctx, h, vms, push, opts), f.mode), nil
}

// replicaResults prints each VM's replica outcome and makes the run's result of them.
func (a *app) replicaResults(results []vmjob.ReplicaResult, mode string) *backupResult {
	res := &backupResult{}
	for _, vr := range results {
		it := replicaItem(vr.Set, vr.Stats, vr.Duration)
		it.Mode, it.Warnings = mode, vr.Warnings
		if vr.Mode != "" {
			it.Mode = vr.Mode
		}
		if vr.Err != nil {
			it.Error = vr.Err.Error()
		}
		a.printReplica(it, vr.Stats)
		res.items = append(res.items, it)
	}
	return res
}

// diskBytes is the apparent size of the disk files of a replica set, the total its progress
// counts towards; a file that cannot be read counts 0 here and fails in the push.
func diskBytes(files []replica.File) int64 {
	var n int64
	for _, f := range files {
		if fi, err := os.Stat(f.Source); err == nil && f.Disk {
			n += fi.Size()
		}
	}
	return n
}

// distinctNames refuses a selection in which two VMs share a name: their replicas would share
// one folder on the far side.
func distinctNames(vms []appliance.VM) error {
	seen := map[string]string{}
	for _, vm := range vms {
		if id, dup := seen[vm.Name]; dup {
			return usagef("VMs %s and %s are both named %q: their replicas would share one folder on the far side; rename one, or leave one out with --exclude-vm", id, vm.ID, vm.Name)
		}
		seen[vm.Name] = vm.ID
	}
	return nil
}

// replicaItem is the job-history row of one replica set: read is what was hashed, "added" the
// changed bytes, "stored" what went over the link.
func replicaItem(set string, st replica.Stats, d time.Duration) backupItem {
	it := backupItem{Source: set, Kind: "replica", Duration: d, Replica: &st}
	it.Stats.BytesRead, it.Stats.BytesAdded, it.Stats.BytesStored = st.BytesRead, st.BytesChanged, st.BytesSent
	return it
}

// printReplica prints one replica set's outcome as it ends: a text line and its warnings. With
// --json the run's summary comes at the end instead (printBackupResult).
func (a *app) printReplica(it backupItem, st replica.Stats) {
	if a.jsonOut {
		return
	}
	if it.Error != "" {
		fmt.Fprintf(a.stdout, "replica %s: FAILED: %s\n", it.Source, it.Error)
		return
	}
	fmt.Fprintf(a.stdout, "replica %s: %d files, read %s, %d blocks changed (%s), sent %s, %s\n", it.Source, st.Files,
		humanBytes(st.BytesRead), st.BlocksChanged, humanBytes(st.BytesChanged), humanBytes(st.BytesSent), st.Elapsed.Truncate(time.Millisecond))
	for _, w := range it.Warnings {
		fmt.Fprintf(a.stdout, "  warning: %s\n", w)
	}
}
