package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/snapferry/snapferry/appliance/libvirt"
	"github.com/snapferry/snapferry/images/disk"
	"github.com/snapferry/snapferry/images/overwrite"
	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/vmdk"
)

type restoreFlags struct {
	from      string
	target    string
	source    string
	datastore string
	name      string
	register  bool
	overwrite bool
	powerOn   bool
	powerOff  bool
	wait      string
	vmfsRoot  string
	origin    string
}

func newRestoreCmd(a *app) *cobra.Command {
	var f restoreFlags
	var tf *tapeFlags
	var lf libvirtRestoreFlags
	c := &cobra.Command{
		Use:   "restore SNAPSHOT[:PATH] --from=REPO (--target=DIR | --datastore=DS | --disk-dir=DIR | --pool=NAME) [options]",
		Short: "restore a snapshot",
		Long: "Restore writes a snapshot (or the part below PATH) into --target=DIR: disk images sparse, files\n" +
			"with their metadata. A VM snapshot with --datastore=DS is recreated as a VM on this host. snapferry\n" +
			"never restores over the original in place, and replaces existing files or a VM only with\n" +
			"--overwrite. SNAPSHOT is an id, a unique prefix of one, or latest (with --source).",
		Example: "  snapferry restore latest:/etc --from=/backup/repo --source=/etc --target=/tmp/r\n" +
			"  snapferry restore 3f2a9c1e --from=/backup/repo --datastore=datastore1 --name=web01-restored --register",
		Args: exactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error { return a.restore(args[0], f, tf, lf) },
	}
	fs := c.Flags()
	fs.StringVar(&f.from, "from", "", "repository to restore from (env SNAPFERRY_REPO)")
	fs.StringVar(&f.target, "target", "", "folder to restore into")
	fs.StringVar(&f.source, "source", "", "with latest: the source (path or VM name) whose newest snapshot to take")
	fs.StringVar(&f.datastore, "datastore", "", "VM restore: datastore to create the VM on")
	fs.StringVar(&f.name, "name", "", "VM restore: name of the restored VM")
	fs.BoolVar(&f.register, "register", false, "VM restore: register the VM on this host")
	fs.BoolVar(&f.overwrite, "overwrite", false, "replace existing files or a VM of the same name")
	fs.BoolVar(&f.powerOn, "power-on", false, "VM restore: power the VM on afterwards")
	fs.BoolVar(&f.powerOff, "power-off", false, "VM restore with --overwrite: power off the running VM it replaces")
	fs.StringVar(&f.wait, "wait", "", "VM restore: wait this long for a VM another job is using")
	a.addVMFSFlag(fs, &f.vmfsRoot)
	a.addLibvirtRestoreFlags(fs, &lf) // libvirt domains: restore_libvirt.go
	a.addOriginFlag(fs, &f.origin)
	a.addSSHFlags(fs)
	a.addPasswordFlag(fs)
	tf = addTapeAccessFlags(fs) // tape: --changer, --tape-home for --from=tape:// (restore_tape.go)
	a.addHostFlag(c)
	return c
}

func (a *app) restore(snapshot string, f restoreFlags, tf *tapeFlags, lf libvirtRestoreFlags) error {
	if f.target == "" && f.datastore == "" && lf.diskDir == "" && lf.pool == "" {
		return usagef("restore needs --target=DIR (files, images), --datastore=DS (ESXi VMs) or --disk-dir=DIR / --pool=NAME (libvirt domains); snapferry never overwrites the original in place")
	}
	spec, err := repoSpec(f.from, "from")
	if err != nil {
		return err
	}
	ref, sub := splitSnapshotRef(snapshot)
	spec, ref, cleanup, err := a.stageFromTape(spec, ref, f, tf) // tape: the save set into a temporary repository (restore_tape.go)
	if err != nil {
		return err
	}
	defer cleanup()
	r, err := a.openRepo(spec, false)
	if err != nil {
		return err
	}
	defer r.Close() // closes the store too (openRepo)
	si, err := a.findSnapshot(r, ref, repo.SnapshotFilter{Source: f.source})
	if err != nil {
		return err
	}
	sn := si.Snapshot
	if libvirt.IsLibvirtSnapshot(sn) && f.target == "" {
		return a.runRestoreJob(si, f, func(prog *renderer) (int, error) { return a.restoreLibvirt(r, si, f, lf, prog) })
	}
	if f.datastore != "" {
		if sn.Kind != repo.SnapshotVM {
			return usagef("snapshot %s is a %s backup, not a VM: use --target=DIR", si.ID.Short(), sn.Kind)
		}
		return a.runRestoreJob(si, f, func(prog *renderer) (int, error) { return a.restoreVM(r, si, f, prog) })
	}
	if f.target == "" {
		return usagef("restore needs --target=DIR (snapferry never overwrites the original in place)")
	}
	if err := os.MkdirAll(f.target, 0o755); err != nil {
		return fmt.Errorf("create target %s: %w", f.target, err)
	}
	return a.runRestoreJob(si, f, func(prog *renderer) (int, error) {
		if handled, n, err := a.restoreInsideDisk(r, sn, sub, f); handled { // IMAGE/pN/PATH (restore_disk_files.go)
			return n, err
		}
		n, kept, err := a.restoreDisks(r, sn, sub, f, prog)
		if err != nil {
			return n, err
		}
		if sn.Tree != nil {
			m, keptFiles, err := a.restoreTree(r, sn, sub, f, prog)
			n += m
			kept = append(kept, keptFiles...)
			if err != nil {
				return n, errors.Join(err, overwrite.Check(kept))
			}
		}
		if n == 0 && sub != "" {
			return 0, usagef("nothing in snapshot %s matches %q; see `snapferry ls %s`", si.ID.Short(), sub, si.ID.Short())
		}
		if !a.jsonOut {
			fmt.Fprintf(a.stdout, "restored %s of snapshot %s to %s\n", plural(n, "item"), si.ID.Short(), f.target)
		}
		if !overwrite.Listed(len(kept)) {
			for _, p := range kept {
				fmt.Fprintf(a.stderr, "kept %s: it differs from the snapshot\n", p)
			}
		}
		return n, overwrite.Check(kept)
	})
}

// runRestoreJob runs a restore inside the job life cycle (registry, history, report).
func (a *app) runRestoreJob(si repo.SnapshotInfo, f restoreFlags, fn func(*renderer) (int, error)) error {
	var vms []string
	if si.Snapshot.VM != nil {
		vms = []string{si.Snapshot.VM.Name}
	}
	job, err := a.beginJob("restore", f.origin, vms, si.Snapshot.Paths)
	if err != nil {
		return err
	}
	prog := a.renderer()
	start := time.Now()
	n, err := fn(prog)
	prog.Close()
	if a.jsonOut && err == nil {
		a.printJSON(map[string]any{"snapshot": si.ID, "target": f.target, "datastore": f.datastore, "restored": n})
	}
	// The history counts what a restore wrote, as it counts what a backup read.
	return a.endJob(job, err, []backupItem{{Source: si.Snapshot.Source, Kind: "restore", Snapshot: si.ID.String(), Duration: time.Since(start),
		Stats: repo.Stats{BytesRead: prog.cum.Load()}}})
}

// restoreDisks writes each disk image (and a VMDK's descriptor) into the target folder,
// sparse, by package overwrite's rule; it returns the paths kept because they differ.
func (a *app) restoreDisks(r *repo.Repository, sn *repo.Snapshot, sub string, f restoreFlags, prog *renderer) (int, []string, error) {
	n := 0
	var kept []string
	for _, d := range sn.Disks {
		if sub != "" && sub != d.Name && sub != filepath.Base(d.Path) {
			continue
		}
		opts := disk.RestoreOptions{Progress: prog, Overwrite: f.overwrite}
		var err error
		if d.Format == "vmdk" {
			// The descriptor (named as the disk) plus its flat extent beside it.
			err = vmdk.Restore(a.ctx, r, d, filepath.Join(f.target, d.Name), opts)
		} else {
			err = disk.Restore(a.ctx, r, d, filepath.Join(f.target, filepath.Base(d.Path)), opts)
		}
		var nr *overwrite.NotReplaced
		if errors.As(err, &nr) {
			kept = append(kept, nr.Paths...)
			continue
		}
		if err != nil {
			return n, kept, err
		}
		n++
	}
	return n, kept, nil
}
