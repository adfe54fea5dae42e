package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/snapferry/snapferry/appliance/libvirt"
	"github.com/snapferry/snapferry/transfer/ratelimit"
)

// backupFlags are the options of `snapferry backup` (shared/cli.md).
type backupFlags struct {
	vmFlags
	to       string
	bwlimit  string
	host     string
	comp     string
	hv       hypervisorFlags
	asImage  bool
	asFiles  bool
	origin   string
	excludes []string
	oneFS    bool
	lowSpace string
	lowBytes int64 // lowSpace parsed
	rehash   bool
}

func newBackupCmd(a *app) *cobra.Command {
	var f backupFlags
	var tf *tapeFlags
	c := &cobra.Command{
		Use:   "backup (PATH... | --vm=NAMES) --to=REPO [options]",
		Short: "back up disk images, folders or VMs",
		Long: "Backup stores PATHs (disk images, sparse, block by block; folders and files as trees) or this\n" +
			"host's VMs (--vm: frozen by a snapshot, disks and config) as snapshots in REPO. Unchanged data is\n" +
			"never stored twice. A run that skipped some sources exits 3 (partial); the others are kept.\n" +
			"--to=tape://host/DEVICE writes save sets to a tape drive instead (docs/tape.md).",
		Example: "  snapferry backup /srv/images/db.img /etc --to=/backup/repo\n" +
			"  snapferry backup --vm=all --exclude-vm=scratch --to=ssh://backup@nas/volume1/snapferry\n" +
			"  snapferry backup --vm=web01 --mode=warm --to=/backup/repo --host=root@esxi01",
		Args: cobra.ArbitraryArgs,
		RunE: func(_ *cobra.Command, args []string) error { return a.backup(args, f, tf) },
	}
	fs := c.Flags()
	fs.StringVar(&f.to, "to", "", "repository to back up into (env SNAPFERRY_REPO)")
	fs.StringSliceVar(&f.tags, "tag", nil, "tag the snapshots (repeatable)")
	fs.StringVar(&f.vms, "vm", "", "VMs to back up: NAMES|IDS|all|running")
	fs.StringVar(&f.excludeVMs, "exclude-vm", "", "VMs to leave out")
	fs.StringVar(&f.excludeDisk, "exclude-disk", "", "disks to leave out: vmdk1,scsi0:2,name.vmdk")
	fs.StringVar(&f.mode, "mode", "hot", "hot (snapshot), warm (shut down, snapshot, power on) or cold (shut down)")
	fs.BoolVar(&f.quiesce, "quiesce", false, "quiesce the guest file systems (VMware Tools on ESXi, the QEMU guest agent on libvirt)")
	fs.BoolVar(&f.memory, "memory", false, "include the VM's memory in the snapshot")
	fs.BoolVar(&f.forceOff, "force-off", false, "power off hard when the guest does not shut down")
	fs.StringVar(&f.bwlimit, "bwlimit", "", "limit the transfer rate, e.g. 20M (bytes per second)")
	fs.BoolVar(&f.asImage, "image", false, "treat every PATH as a disk image")
	fs.BoolVar(&f.asFiles, "files", false, "treat every PATH as files (never as a disk image)")
	fs.StringVar(&f.wait, "wait", "", "wait this long for a VM another job is using (e.g. 10m)")
	fs.StringArrayVar(&f.excludes, "exclude", nil, "leave out files: a base-name glob (*.tmp) or a path glob (/var/cache/*); dir/ for folders only")
	fs.BoolVar(&f.oneFS, "one-file-system", false, "stay on each PATH's file system (store mount points empty)")
	fs.StringVar(&f.lowSpace, "low-space", "5G", "report store.low-space when the store has less free space than this (0: never)")
	fs.BoolVar(&f.rehash, "rehash", false, "hash every disk block with BLAKE3 again instead of trusting the block fingerprint cache, and store changed blocks whole, not as patches (docs/block-cache.md)")
	fs.StringVar(&f.comp, "compression", "", compressionUsage("how to compress new data (default: the repository's, set at init)"))
	a.addSSHFlags(fs)
	a.addPasswordFlag(fs)
	a.addOriginFlag(fs, &f.origin)
	a.addVMFSFlag(fs, &f.vmfsRoot)
	a.addHypervisorFlags(fs, &f.hv) // libvirt hosts: backup_libvirt.go
	tf = addTapeFlags(fs)           // tape: --pool, --changer, --streams, --tape-home (backup_tape.go)
	a.addHostFlag(c)
	return c
}

func (a *app) backup(pos []string, f backupFlags, tf *tapeFlags) error {
	if f.asImage && f.asFiles {
		return usagef("--image and --files exclude each other")
	}
	switch f.mode {
	case "hot", "warm", "cold":
	default:
		return usagef("--mode=%q: want hot, warm or cold", f.mode)
	}
	if f.vms == "" && len(pos) == 0 {
		return usagef("nothing to back up: give PATH... or --vm=NAMES|all|running")
	}
	chosen, err := compressionChoice(f.comp)
	if err != nil {
		return err
	}
	a.compression = chosen
	low, err := lowSpaceLimit(f.lowSpace)
	if err != nil {
		return err
	}
	f.lowBytes = low
	if f.bwlimit != "" {
		bps, err := ratelimit.ParseRate(f.bwlimit)
		if err != nil {
			return usagef("--bwlimit=%q: %v (examples: 20M, 500K)", f.bwlimit, err)
		}
		a.bwlimit = bps
	}
	spec, err := repoSpec(f.to, "to")
	if err != nil {
		return err
	}
	f.to = spec
	if strings.HasPrefix(f.to, "tape://") { // tape: save sets on a tape drive (backup_tape.go)
		return a.backupToTape(pos, f, tf)
	}
	if f.vms != "" && len(pos) > 0 {
		return usagef("give either PATH... or --vm, not both (run two backups)")
	}
	var vmList []string
	if f.vms != "" {
		vmList = strings.Split(f.vms, ",")
	} else {
		// PATH backups open f.to first thing after registering the job (early_store.go), and
		// their first image is read against its cache meanwhile (backup_prehash.go).
		defer a.startEarlyStore(f.to)()
		defer a.startPrehash(f, pos)()
	}
	job, err := a.beginJob("backup", f.origin, vmList, pos)
	if err != nil {
		return err
	}
	var res *backupResult
	if f.vms != "" {
		var lv *libvirt.Driver
		if lv, err = a.libvirtHost(f.hv); err == nil && lv != nil {
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
	return a.endJob(job, err, res.list(), res.notices()...)
}
