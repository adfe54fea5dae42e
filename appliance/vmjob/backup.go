package vmjob

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/images/disk"
	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/vmdk"
)

// Result is the outcome of one VM's backup.
type Result struct {
	VM        appliance.VM
	Snapshot  repo.ID // the committed repository snapshot; zero when nothing was committed
	Committed bool
	Partial   bool     // some disks were skipped (see Warnings)
	Warnings  []string // skipped disks, removed leftovers' notes
	Err       error    // the VM failed (nothing committed), or cleanup after a commit failed
	Stats     repo.Stats
	Duration  time.Duration
}

// Backup backs up each VM in turn; a VM that fails does not stop the others. The CLI exits 0
// when every Result has no Err and is not Partial, 3 (partial) when some are partial or failed
// while others succeeded, 1 when all failed.
func Backup(ctx context.Context, h appliance.Host, r Repo, vms []appliance.VM, o BackupOptions) []Result {
	out := make([]Result, 0, len(vms))
	for _, vm := range vms {
		if ctx.Err() != nil {
			out = append(out, Result{VM: vm, Err: fmt.Errorf("back up VM %s: %w", vm.Name, ctx.Err())})
			continue
		}
		out = append(out, BackupVM(ctx, h, r, vm, o))
	}
	return out
}

// BackupVM backs up one VM as o.Mode says and commits one repository snapshot of kind "vm".
func BackupVM(ctx context.Context, h appliance.Host, r Repo, vm appliance.VM, o BackupOptions) Result {
	o.defaults()
	start := o.Clock.Now()
	res := Result{VM: vm}
	if o.JobID == "" || o.LockDir == "" {
		res.Err = errors.New("back up VM: JobID and LockDir are required")
		return res
	}
	lock, err := appliance.LockVM(ctx, o.LockDir, vm.ID, o.LockWait)
	if err != nil {
		res.Err = fmt.Errorf("back up VM %s: %w", vm.Name, err)
		return res
	}
	defer lock.Unlock()
	j := &vmBackup{h: h, r: r, vm: vm, o: &o, res: &res, start: start}
	err = j.run(ctx)
	if err != nil {
		res.Err = fmt.Errorf("back up VM %s: %w", vm.Name, err)
	}
	res.Duration = o.Clock.Now().Sub(start)
	return res
}

// vmBackup is one VM backup in progress.
type vmBackup struct {
	h     appliance.Host
	r     Repo
	vm    appliance.VM
	o     *BackupOptions
	res   *Result
	start time.Time
}

func (j *vmBackup) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	j.res.Warnings = append(j.res.Warnings, msg)
	j.o.logf("VM %s: %s", j.vm.Name, msg)
}

// run does the backup; every step that needs undoing registers it before going on, and the undo
// runs whatever happens (errors, cancellation).
func (j *vmBackup) run(ctx context.Context) (err error) {
	h, vm, o := j.h, j.vm, j.o
	userSnaps, err := removeLeftovers(ctx, h, vm, o)
	if err != nil {
		return err
	}
	cfg, err := h.Config(ctx, vm.ID)
	if err != nil {
		return err
	}
	if len(userSnaps) > 0 && o.UserSnapshots == Refuse {
		return fmt.Errorf("the VM has %d snapshot(s) of its own (first: %q); backing it up needs a temporary clone of its disk chain: allow that, or consolidate the snapshots first", len(userSnaps), userSnaps[0].Name)
	}
	disks := j.pickDisks(cfg)
	if len(disks) == 0 {
		return errors.New("no disk to back up (all excluded or skipped)")
	}
	stageDir, staged, err := stageConfig(cfg.Files, o.TempDir)
	if err != nil {
		return err
	}
	defer os.RemoveAll(stageDir)

	power, err := h.PowerState(ctx, vm.ID)
	if err != nil {
		return err
	}
	wasOn := power == appliance.PoweredOn
	poweredDown := false
	var settle time.Duration // how long a guest shutdown we asked for may still take to finish
	defer func() {
		if poweredDown {
			if perr := powerOnAgain(ctx, h, vm, settle, o.PollInterval, o.Clock); perr != nil {
				err = errors.Join(err, perr)
			}
		}
	}()
	if o.Mode != Hot && wasOn {
		o.logf("VM %s: shutting the guest down (%s mode)", vm.Name, o.Mode)
		if err := shutdownGuest(ctx, h, vm, o.ShutdownTimeout, o.ForceOff, o.PollInterval, o.Clock); err != nil {
			// The guest may be on its way down (a cancelled wait): let it finish, then power on.
			if !errors.Is(err, appliance.ErrToolsNotRunning) {
				poweredDown, settle = true, max(o.ShutdownTimeout, time.Minute)
			}
			return err
		}
		poweredDown = true
	}

	// sources maps each picked disk to the descriptor whose chain holds its state at the moment
	// of consistency: the frozen files under our snapshot, or (cold) the disks themselves.
	sources := map[string][]string{}
	if o.Mode == Cold {
		for _, d := range disks {
			sources[d.Name] = d.Chain
		}
	} else {
		// err is the named result here (no :=), so the deferred removal can add its failure to it.
		var snap appliance.SnapshotInfo
		snap, err = h.CreateSnapshot(ctx, vm.ID, SnapshotPrefix+o.JobID, "snapferry backup job "+o.JobID,
			appliance.SnapshotOptions{Quiesce: o.Quiesce && wasOn && o.Mode == Hot, Memory: o.Memory && wasOn && o.Mode == Hot})
		if err != nil {
			// A failed create may still leave a snapshot on some hosts: the same cleanup applies.
			j.removeOursIfPresent(ctx)
			return err
		}
		defer func() {
			if rerr := removeWithRetry(ctx, h, vm, snap, o); rerr != nil {
				err = errors.Join(err, fmt.Errorf("remove our VM snapshot %q: %w (the next run removes it; or remove it on the host)", snap.Name, rerr))
			}
		}()
		if o.Mode == Warm && poweredDown {
			if err := powerOnAgain(ctx, h, vm, 0, o.PollInterval, o.Clock); err != nil {
				return err
			}
			poweredDown = false
		}
		var after *appliance.VMConfig
		if after, err = h.Config(ctx, vm.ID); err != nil {
			return err
		}
		for _, d := range disks {
			for _, a := range after.Disks {
				if a.Device == d.Device && len(a.Chain) >= 2 {
					sources[d.Name] = a.Chain[1:]
				}
			}
			if sources[d.Name] == nil {
				return fmt.Errorf("disk %s (%s) has no frozen file under our snapshot", d.Name, d.Device)
			}
		}
	}

	var area *cloneArea
	defer func() {
		if cerr := area.remove(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	sn := &repo.Snapshot{
		Time: j.start, Host: o.Host, Kind: repo.SnapshotVM, Source: vm.Name, Tags: o.Tags, JobID: o.JobID,
		VM: &repo.VMInfo{Name: vm.Name, ID: vm.ID, Datastore: vm.Datastore, VMXPath: vm.VMXPath, Mode: string(o.Mode)},
	}
	var stats repo.Stats
	before := storedBytes(j.r)
	for _, d := range disks {
		chain := sources[d.Name]
		src := chain[0]
		if len(chain) > 1 {
			// The state is spread over the user's deltas: read it through a standalone clone.
			if area == nil {
				if area, err = openCloneArea(ctx, h, o, d.Size); err != nil {
					return fmt.Errorf("disk %s: %w", d.Name, err)
				}
			}
			o.logf("VM %s: cloning disk %s's snapshot chain to a temporary thin disk", vm.Name, d.Name)
			if src, err = area.clone(ctx, h, d, src); err != nil {
				return fmt.Errorf("disk %s: %w", d.Name, err)
			}
		}
		o.logf("VM %s: reading disk %s (%s)", vm.Name, d.Name, d.Device)
		rd, st, err := vmdk.Backup(ctx, j.r, src, disk.Options{Name: d.Name, Device: d.Device, Progress: o.Progress})
		if err != nil {
			return fmt.Errorf("disk %s: %w", d.Name, err)
		}
		rd.Path = d.Descriptor
		sn.Disks = append(sn.Disks, rd)
		addStats(&stats, st)
	}
	tree, st, err := saveConfigTree(ctx, j.r, staged)
	if err != nil {
		return err
	}
	addStats(&stats, st)
	sn.Tree = &tree
	sn.Partial = j.res.Partial
	sn.Warnings = j.res.Warnings
	if err := j.r.Flush(ctx); err != nil {
		return fmt.Errorf("store data: %w", err)
	}
	stats.BytesStored = storedBytes(j.r) - before
	sn.Stats = stats
	if p, perr := j.r.FindSnapshot(ctx, "latest", repo.SnapshotFilter{Host: o.Host, Source: vm.Name, Kind: repo.SnapshotVM}); perr == nil {
		sn.Parent = &p.ID
	}
	id, err := j.r.SaveSnapshot(ctx, sn)
	if err != nil {
		return fmt.Errorf("commit snapshot: %w", err)
	}
	j.res.Snapshot, j.res.Committed, j.res.Stats = id, true, stats
	o.logf("VM %s: committed snapshot %s", vm.Name, id.Short())
	return nil
}

// pickDisks applies --exclude-disk and skips what cannot be copied consistently, with warnings.
func (j *vmBackup) pickDisks(cfg *appliance.VMConfig) []appliance.Disk {
	var out []appliance.Disk
	for _, d := range cfg.Disks {
		switch {
		case appliance.DiskExcluded(d, j.o.ExcludeDisks):
			j.o.logf("VM %s: disk %s (%s) excluded", j.vm.Name, d.Name, d.Device)
		case d.RDM != appliance.NotRDM:
			j.res.Partial = true
			j.warn("disk %s (%s) is a %s raw device mapping: skipped (back it up from inside the guest)", d.Name, d.Device, d.RDM)
		case d.Independent && j.o.Mode != Cold:
			j.res.Partial = true
			j.warn("disk %s (%s) is independent (%s): snapshots leave it out, skipped (use --mode=cold to include it)", d.Name, d.Device, d.Mode)
		default:
			out = append(out, d)
		}
	}
	return out
}

// removeOursIfPresent removes a snapshot of this job that a failed create left behind.
func (j *vmBackup) removeOursIfPresent(ctx context.Context) {
	snaps, err := j.h.Snapshots(context.WithoutCancel(ctx), j.vm.ID)
	if err != nil {
		return
	}
	for _, s := range snaps {
		if s.Name == SnapshotPrefix+j.o.JobID {
			if err := removeWithRetry(ctx, j.h, j.vm, s, j.o); err != nil {
				j.warn("could not remove snapshot %q after a failed create: %v", s.Name, err)
			}
		}
	}
}

// storedBytes is what the repository has uploaded so far in this process, when it can tell
// (*repo.Repository can); the difference around one VM is that VM's stored (compressed) bytes.
func storedBytes(r Repo) int64 {
	if c, ok := r.(interface{ Stats() repo.RunStats }); ok {
		return c.Stats().BytesStored
	}
	return 0
}

func addStats(a *repo.Stats, b repo.Stats) {
	a.FilesNew += b.FilesNew
	a.FilesChanged += b.FilesChanged
	a.FilesUnchanged += b.FilesUnchanged
	a.BytesRead += b.BytesRead
	a.BytesAdded += b.BytesAdded
	a.BytesStored += b.BytesStored
	a.BlobsNew += b.BlobsNew
	a.BlobsReused += b.BlobsReused
}
