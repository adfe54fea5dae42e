package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/appliance/vmjob"
	"github.com/snapferry/snapferry/images/disk"
	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/tree"
	"github.com/snapferry/snapferry/transfer/ratelimit"
	"github.com/snapferry/snapferry/transfer/tape"
)

// tapeSource is one save set of a tape backup: a VM, an image (or VMDK pair), or all file paths.
type tapeSource struct {
	kind  string
	paths []string
	vm    appliance.VM
}

// tapeRun is what every save set of one tape backup shares.
type tapeRun struct {
	lib   tape.Library
	f     backupFlags
	tf    *tapeFlags
	host  string
	jobID string
	prog  *renderer
	vmh   appliance.Host      // VM backups only
	vmOpt vmjob.BackupOptions // VM backups only
	// limit paces the save sets' streams together (--bwlimit): they are nearly all of what a
	// tape:// backup sends over the link.
	limit *ratelimit.Limiter
}

// backupToTape backs up PATHs or VMs as save sets on a tape (--to=tape://...): each VM and each
// image is its own set, all file paths together one set, as with repositories. Tape backups are
// always full (nothing can be read back from a tape being written); blobs are deduplicated
// within a set. --streams=N writes N sets at once, multiplexed onto the same tape file.
func (a *app) backupToTape(pos []string, f backupFlags, tf *tapeFlags) error {
	if tf.streams < 1 || tf.streams > 64 {
		return usagef("--streams=%d: want 1 to 64", tf.streams)
	}
	if f.vms != "" && len(pos) > 0 {
		return usagef("give either PATH... or --vm, not both (run two backups)")
	}
	run := &tapeRun{f: f, tf: tf}
	if a.bwlimit > 0 {
		run.limit = ratelimit.NewLimiter(a.bwlimit, nil)
	}
	var sources []tapeSource
	var vmNames []string
	var err error
	if f.vms != "" {
		vmNames = strings.Split(f.vms, ",")
		sources, err = a.tapeVMSources(run)
	} else {
		sources, err = tapePathSources(pos, f)
	}
	if err != nil {
		return err
	}
	job, err := a.beginJob("backup", f.origin, vmNames, pos)
	if err != nil {
		return err
	}
	run.jobID, run.vmOpt.JobID = job.ID, job.ID
	res := &backupResult{}
	if run.lib, err = a.openTapeLibrary(f.to, tf); err == nil {
		res.items = make([]backupItem, len(sources))
		err = a.writeTapeSets(run, sources, res)
		a.closeTape(run.lib)
	}
	if err == nil && res.partial() {
		err = res.outcome()
	}
	a.printBackupResult(res)
	return a.endJob(job, err, res.list())
}

// tapePathSources sorts PATHs into image sets and one files set, as backupPaths does.
func tapePathSources(pos []string, f backupFlags) ([]tapeSource, error) {
	images, files, failed, err := classifyPaths(pos, f)
	if err == nil && len(failed) > 0 {
		err = usagef("%s", failed[0].Error) // a tape save set is written whole or not at all
	}
	if err != nil {
		return nil, err
	}
	var sources []tapeSource
	for _, im := range images {
		sources = append(sources, tapeSource{kind: im.kind, paths: []string{im.path}})
	}
	if len(files) > 0 {
		sources = append(sources, tapeSource{kind: repo.SnapshotFiles, paths: files})
	}
	return sources, nil
}

// tapeVMSources selects the VMs and prepares the VM job options shared by their sets.
func (a *app) tapeVMSources(run *tapeRun) ([]tapeSource, error) {
	f := run.f
	h, vms, opts, err := a.selectVMs(f.vmFlags)
	if err != nil {
		return nil, err
	}
	run.vmh = h
	run.vmOpt = opts
	sources := make([]tapeSource, len(vms))
	for i, vm := range vms {
		sources[i] = tapeSource{kind: repo.SnapshotVM, vm: vm}
	}
	return sources, nil
}

// writeTapeSets runs up to --streams sources at once (tape.RunStreams). A tape failure stops
// sources not yet started (a failed VM does not); sets already written stay on tape.
func (a *app) writeTapeSets(run *tapeRun, sources []tapeSource, res *backupResult) error {
	run.prog = a.renderer()
	defer run.prog.Close()
	run.host, _ = os.Hostname()
	run.vmOpt.Host, run.vmOpt.Progress = run.host, run.prog
	started, err := tape.RunStreams(a.ctx, len(sources), run.tf.streams, func(ctx context.Context, i int) error {
		it, err := a.writeTapeSet(ctx, run, sources[i])
		res.items[i] = it
		return err
	})
	kept := res.items[:0]
	for i, it := range res.items {
		if started[i] && it.Source != "" {
			kept = append(kept, it)
		}
	}
	res.items = kept
	return err
}

// writeTapeSet backs one source up into a new save set, through the same VM, disk and tree code
// as a repository backup, with a tape.Encoder as the blob store.
func (a *app) writeTapeSet(ctx context.Context, run *tapeRun, src tapeSource) (backupItem, error) {
	start := time.Now()
	source := strings.Join(src.paths, " ")
	kind := src.kind
	switch kind {
	case "vmdk":
		kind = repo.SnapshotImage
	case repo.SnapshotVM:
		source = src.vm.Name
	}
	it := backupItem{Source: source, Kind: kind}
	failed := func(err error) (backupItem, error) {
		it.Error = err.Error()
		return it, fmt.Errorf("back up %s to tape: %w", source, err)
	}
	set, err := run.lib.OpenSet(ctx, run.tf.poolName(), tape.SetHeader{Host: run.host, Source: source, Kind: kind,
		Time: start.UTC(), JobID: run.jobID, Tags: run.f.tags})
	if err != nil {
		return failed(err)
	}
	var out io.Writer = set
	if run.limit != nil {
		out = ratelimit.NewWriter(ctx, set, run.limit)
	}
	enc, err := tape.NewEncoder(out, repo.DefaultBlockSize)
	if err != nil {
		set.Abort()
		return failed(err)
	}
	defer enc.Close()
	ts := tape.NewSetRepo(enc, set)
	if kind == repo.SnapshotVM {
		vr := vmjob.BackupVM(ctx, run.vmh, ts, src.vm, run.vmOpt)
		it.Mode, it.Stats, it.Warnings = run.f.mode, vr.Stats, vr.Warnings
		if vr.Err != nil {
			it.Error = vr.Err.Error()
		}
	} else {
		sn := &repo.Snapshot{Time: start, Host: run.host, Kind: kind, Source: source, Paths: src.paths, Tags: run.f.tags, JobID: run.jobID}
		commit := repo.BeginRun(ts)
		if st, err := a.fillTapeSet(ctx, ts, src, sn, run.prog); err != nil {
			ts.Fail(err)
		} else if _, err := commit.Commit(ctx, sn, st); err == nil {
			it.Stats, it.Warnings = sn.Stats, sn.Warnings
		}
	}
	if ts.Entry() == nil {
		set.Abort()
		if ts.Err() == nil && it.Error != "" {
			return it, nil // the VM failed (snapshot, power...): the others go on
		}
		if ts.Err() == nil {
			ts.Fail(fmt.Errorf("the save set was not finished"))
		}
		return failed(ts.Err())
	}
	e := ts.Entry()
	it.Stats.BytesStored = e.Bytes
	it.Snapshot, it.Duration = e.ID, time.Since(start)
	var where []string
	for _, p := range e.Parts {
		where = append(where, fmt.Sprintf("volume %s file %d", p.Volume, p.File))
	}
	if !a.jsonOut {
		fmt.Fprintf(a.stderr, "save set %s of %s: %s\n", shortID(e.ID), source, strings.Join(where, ", "))
	}
	return it, nil
}

// fillTapeSet reads an image or the file paths into the set and fills in the snapshot.
func (a *app) fillTapeSet(ctx context.Context, ts *tape.SetRepo, src tapeSource, sn *repo.Snapshot, prog *renderer) (repo.Stats, error) {
	if src.kind == repo.SnapshotFiles {
		r, err := tree.Backup(ctx, ts, src.paths, tree.Options{Progress: prog})
		if err != nil {
			return repo.Stats{}, err
		}
		root := r.Root
		sn.Tree, sn.Partial = &root, len(r.Errors) > 0
		for _, fe := range append(r.Errors, r.Warnings...) {
			sn.Warnings = append(sn.Warnings, fe.Error())
		}
		return r.Stats, nil
	}
	opts, data := disk.Options{Progress: prog, Warn: func(s string) { sn.Warnings = append(sn.Warnings, s) }}, src.paths[0]
	if src.kind == "vmdk" {
		desc, flat, err := readDescriptorPair(src.paths[0])
		if err != nil {
			return repo.Stats{}, err
		}
		opts.Format, opts.Descriptor, opts.Name, data = "vmdk", desc, filepath.Base(src.paths[0]), flat
	}
	d, st, err := disk.Backup(ctx, ts, data, opts)
	if err != nil {
		return repo.Stats{}, err
	}
	sn.Disks = []repo.Disk{d}
	return st, nil
}
