package main

import (
	"strings"

	"github.com/snapferry/snapferry/appliance/libvirt"
	"github.com/snapferry/snapferry/transfer/ratelimit"
)

// backupFlags are the options of `snapferry backup` (shared/cli.md).
type backupFlags struct {
	vmFlags
	to       string
	bwlimit  string
	host     string
	asImage  bool
	asFiles  bool
	origin   string
	excludes []string
	oneFS    bool
	lowSpace string
	lowBytes int64 // lowSpace parsed
	rehash   bool
}

func runBackup(a *app, args []string) int {
	var f backupFlags
	fs := a.flags
	fs.StringVar(&f.to, "to", "", "repository to back up into (env SNAPFERRY_REPO)")
	fs.StringSliceVar(&f.tags, "tag", nil, "tag the snapshots (repeatable)")
	fs.StringVar(&f.vms, "vm", "", "VMs to back up: NAMES|IDS|all|running")
	fs.StringVar(&f.excludeVMs, "exclude-vm", "", "VMs to leave out")
	fs.StringVar(&f.excludeDisk, "exclude-disk", "", "disks to leave out: vmdk1,scsi0:2,name.vmdk")
	fs.StringVar(&f.mode, "mode", "hot", "hot (snapshot), warm (shut down, snapshot, power on) or cold (shut down)")
	fs.BoolVar(&f.quiesce, "quiesce", false, "quiesce the guest file system (VMware Tools)")
	fs.BoolVar(&f.memory, "memory", false, "include the VM's memory in the snapshot")
	fs.BoolVar(&f.forceOff, "force-off", false, "power off hard when the guest does not shut down")
	fs.StringVar(&f.bwlimit, "bwlimit", "", "limit the transfer rate, e.g. 20M (bytes per second)")
	fs.StringVar(&f.host, "host", "", "run this backup on another host: [user@]host[:port]")
	fs.BoolVar(&f.asImage, "image", false, "treat every PATH as a disk image")
	fs.BoolVar(&f.asFiles, "files", false, "treat every PATH as files (never as a disk image)")
	fs.StringVar(&f.wait, "wait", "", "wait this long for a VM another job is using (e.g. 10m)")
	fs.StringArrayVar(&f.excludes, "exclude", nil, "leave out files: a base-name glob (*.tmp) or a path glob (/var/cache/*); dir/ for folders only")
	fs.BoolVar(&f.oneFS, "one-file-system", false, "stay on each PATH's file system (store mount points empty)")
	fs.StringVar(&f.lowSpace, "low-space", "5G", "report store.low-space when the store has less free space than this (0: never)")
	fs.BoolVar(&f.rehash, "rehash", false, "hash every disk block with BLAKE3 again instead of trusting the block fingerprint cache, and store changed blocks whole, not as patches (docs/block-cache.md)")
	comp := a.addCompressionFlag("how to compress new data (default: the repository's, set at init)")
	a.addSSHFlags()
	a.addOriginFlag(&f.origin)
	a.addVMFSFlag(&f.vmfsRoot)
	var hv hypervisorFlags
	a.addHypervisorFlags(&hv) // libvirt hosts: backup_libvirt.go
	tf := addTapeFlags(fs)    // tape: --pool, --changer, --streams, --tape-home (backup_tape.go)
	pos, code, ok := a.parse(args)
	if !ok {
		return code
	}
	if f.asImage && f.asFiles {
		return a.fail(usagef("--image and --files exclude each other"))
	}
	switch f.mode {
	case "hot", "warm", "cold":
	default:
		return a.fail(usagef("--mode=%q: want hot, warm or cold", f.mode))
	}
	if f.vms == "" && len(pos) == 0 {
		return a.fail(usagef("nothing to back up: give PATH... or --vm=NAMES|all|running"))
	}
	chosen, err := compressionChoice(*comp)
	if err != nil {
		return a.fail(err)
	}
	a.compression = chosen
	low, err := lowSpaceLimit(f.lowSpace)
	if err != nil {
		return a.fail(err)
	}
	f.lowBytes = low
	if f.bwlimit != "" {
		bps, err := ratelimit.ParseRate(f.bwlimit)
		if err != nil {
			return a.fail(usagef("--bwlimit=%q: %v (examples: 20M, 500K)", f.bwlimit, err))
		}
		a.bwlimit = bps
	}
	spec, err := repoSpec(f.to, "to")
	if err != nil {
		return a.fail(err)
	}
	f.to = spec
	if strings.HasPrefix(f.to, "tape://") { // tape: save sets on a tape drive (backup_tape.go)
		return a.backupToTape(pos, f, tf)
	}
	if f.vms != "" && len(pos) > 0 {
		return a.fail(usagef("give either PATH... or --vm, not both (run two backups)"))
	}
	var vmList []string
	if f.vms != "" {
		vmList = strings.Split(f.vms, ",")
	}
	job, err := a.beginJob("backup", f.origin, vmList, pos)
	if err != nil {
		return a.fail(err)
	}
	var res *backupResult
	if f.vms != "" {
		var lv *libvirt.Driver
		if lv, err = a.libvirtHost(hv); err == nil && lv != nil {
			defer lv.Close()
			res, err = a.backupLibvirt(job, f, lv)
		} else if err == nil {
			res, err = a.backupVMs(job, f)
		}
	} else {
		res, err = a.backupPaths(pos, f)
	}
	if err == nil && res.partial() {
		err = res.outcome()
	}
	if res != nil {
		a.printBackupResult(res)
	}
	code = a.endJob(job, err, res.list(), res.notices()...)
	if err != nil {
		a.fail(err)
	}
	return code
}
