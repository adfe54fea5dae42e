package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
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
func (a *app) backupToTape(pos []string, f backupFlags, tf *tapeFlags) int {
	if tf.streams < 1 || tf.streams > 64 {
		return a.fail(usagef("--streams=%d: want 1 to 64", tf.streams))
	}
	if f.vms != "" && len(pos) > 0 {
		return a.fail(usagef("give either PATH... or --vm, not both (run two backups)"))
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
		return a.fail(err)
	}
	job, err := a.beginJob("backup", f.origin, vmNames, pos)
	if err != nil {
		return a.fail(err)
	}
	run.jobID, run.vmOpt.JobID = job.ID, job.ID
	res := &backupResult{}
	if run.lib, err = a.openTapeLibrary(f.to, tf); err == nil {
		res.items = make([]backupItem, len(sources))
		err = a.writeTapeSets(run, sources, res)
		a.closeTape(run.lib)
	}
	if err == nil && res.partial() {
		err = partialError{fmt.Sprintf("%d of %d sources were not backed up completely (see above)", res.partialCount(), len(res.items))}
	}
	a.printBackupResult(res)
	code := a.endJob(job, err, res.list())
	if err != nil {
		a.fail(err)
	}
	return code
}

// tapePathSources sorts PATHs into image sets and one files set, as backupPaths does.
func tapePathSources(pos []string, f backupFlags) ([]tapeSource, error) {
	images, files, err := classifyPaths(pos, f)
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

// writeTapeSets runs up to --streams sources at once. A tape failure stops sources not yet
// started (a failed VM does not); sets already written stay on tape.
func (a *app) writeTapeSets(run *tapeRun, sources []tapeSource, res *backupResult) error {
	run.prog = a.renderer()
	defer run.prog.Close()
	run.host, _ = os.Hostname()
	run.vmOpt.Host, run.vmOpt.Progress = run.host, run.prog
	ctx, cancel := context.WithCancel(a.ctx)
	defer cancel()
	sem := make(chan struct{}, run.tf.streams)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for i, src := range sources {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			it, err := a.writeTapeSet(ctx, run, src)
			res.items[i] = it
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	kept := res.items[:0]
	for _, it := range res.items {
		if it.Source != "" {
			kept = append(kept, it)
		}
	}
	res.items = kept
	if first == nil {
		first = a.ctx.Err()
	}
	return first
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
	ts := &tapeSet{Encoder: enc, set: set}
	if kind == repo.SnapshotVM {
		vr := vmjob.BackupVM(ctx, run.vmh, ts, src.vm, run.vmOpt)
		it.Mode, it.Stats, it.Warnings = run.f.mode, vr.Stats, vr.Warnings
		if vr.Err != nil {
			it.Error = vr.Err.Error()
		}
	} else {
		sn := &repo.Snapshot{Time: start, Host: run.host, Kind: kind, Source: source, Paths: src.paths, Tags: run.f.tags, JobID: run.jobID}
		if err := a.fillTapeSet(ctx, ts, src, sn, run.prog); err != nil {
			ts.err = err
		} else if _, err := ts.SaveSnapshot(ctx, sn); err == nil {
			it.Stats, it.Warnings = sn.Stats, sn.Warnings
		}
	}
	if ts.entry == nil {
		set.Abort()
		if ts.err == nil && it.Error != "" {
			return it, nil // the VM failed (snapshot, power...): the others go on
		}
		if ts.err == nil {
			ts.err = fmt.Errorf("the save set was not finished")
		}
		return failed(ts.err)
	}
	e := ts.entry
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
func (a *app) fillTapeSet(ctx context.Context, ts *tapeSet, src tapeSource, sn *repo.Snapshot, prog *renderer) error {
	if src.kind == repo.SnapshotFiles {
		r, err := tree.Backup(ctx, ts, src.paths, tree.Options{Progress: prog})
		if err != nil {
			return err
		}
		root := r.Root
		sn.Tree, sn.Stats, sn.Partial = &root, r.Stats, len(r.Errors) > 0
		for _, fe := range append(r.Errors, r.Warnings...) {
			sn.Warnings = append(sn.Warnings, fe.Error())
		}
		return nil
	}
	opts, data := disk.Options{Progress: prog, Warn: func(s string) { sn.Warnings = append(sn.Warnings, s) }}, src.paths[0]
	if src.kind == "vmdk" {
		desc, flat, err := readDescriptorPair(src.paths[0])
		if err != nil {
			return err
		}
		opts.Format, opts.Descriptor, opts.Name, data = "vmdk", desc, filepath.Base(src.paths[0]), flat
	}
	d, st, err := disk.Backup(ctx, ts, data, opts)
	if err != nil {
		return err
	}
	sn.Disks, sn.Stats = []repo.Disk{d}, st
	return nil
}

// tapeSet is one save set seen as the repository a VM job (or disk/tree backup) writes into:
// blobs go into the set's stream, the snapshot manifest ends it. There is no parent on tape.
type tapeSet struct {
	*tape.Encoder
	set   tape.SetStream
	entry *tape.SetEntry
	err   error // a tape failure (as opposed to a VM's)
}

var _ vmjob.Repo = (*tapeSet)(nil)

func (t *tapeSet) Flush(ctx context.Context) error { return nil }

func (t *tapeSet) FindSnapshot(ctx context.Context, ref string, f repo.SnapshotFilter) (repo.SnapshotInfo, error) {
	return repo.SnapshotInfo{}, fmt.Errorf("tape save sets have no parent: %w", repo.ErrSnapshotNotFound)
}

// SaveSnapshot ends the set: manifest, trailer, catalog entry.
func (t *tapeSet) SaveSnapshot(ctx context.Context, sn *repo.Snapshot) (repo.ID, error) {
	if sn.Version == 0 {
		sn.Version = repo.SnapshotVersion
	}
	id, info, err := t.Encoder.Finish(sn)
	if err != nil {
		t.err = err
		return id, err
	}
	e, err := t.set.Finish(info)
	if err != nil {
		t.err = err
		return id, err
	}
	t.entry = &e
	return id, nil
}
