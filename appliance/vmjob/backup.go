package vmjob

import (
	"context"
	"fmt"
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
// The VM is held through Freeze, so its snapshot, power and clones are undone whatever happens.
func BackupVM(ctx context.Context, h appliance.Host, r Repo, vm appliance.VM, o BackupOptions) Result {
	o.defaults()
	start := o.Clock.Now()
	res := Result{VM: vm}
	j := &vmBackup{r: r, vm: vm, o: &o, res: &res, start: start}
	err := Freeze(ctx, h, vm, o, func(fz *Frozen) error { return j.copy(ctx, fz) })
	if err != nil {
		res.Err = fmt.Errorf("back up VM %s: %w", vm.Name, err)
	}
	res.Duration = o.Clock.Now().Sub(start)
	return res
}

// vmBackup is one VM backup in progress.
type vmBackup struct {
	r     Repo
	vm    appliance.VM
	o     *BackupOptions
	res   *Result
	start time.Time
}

// copy stores the frozen disks and config files and commits the repository snapshot.
func (j *vmBackup) copy(ctx context.Context, fz *Frozen) error {
	vm, o := j.vm, j.o
	j.res.Partial = fz.Partial
	j.res.Warnings = append(j.res.Warnings, fz.Warnings...)
	sn := &repo.Snapshot{
		Time: j.start, Host: o.Host, Kind: repo.SnapshotVM, Source: vm.Name, Tags: o.Tags, JobID: o.JobID,
		VM: &repo.VMInfo{Name: vm.Name, ID: vm.ID, Datastore: vm.Datastore, VMXPath: vm.VMXPath, Mode: string(o.Mode)},
	}
	var stats repo.Stats
	before := storedBytes(j.r)
	for _, d := range fz.Disks {
		o.logf("VM %s: reading disk %s (%s)", vm.Name, d.Name, d.Device)
		dopts := disk.Options{Name: d.Name, Device: d.Device, Progress: o.Progress,
			Warn: func(s string) { j.res.Warnings = append(j.res.Warnings, "disk "+d.Name+": "+s) }}
		j.useCache(&dopts, d)
		rd, st, err := vmdk.Backup(ctx, j.r, d.Source, dopts)
		if err != nil {
			return fmt.Errorf("disk %s: %w", d.Name, err)
		}
		rd.Path = d.Descriptor
		sn.Disks = append(sn.Disks, rd)
		addStats(&stats, st)
	}
	tree, st, err := saveConfigTree(ctx, j.r, fz.ConfigFiles)
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

// useCache points the disk backup at the disk's fingerprint cache. The key names the VM by its
// .vmx path (stable while the VM stays registered where it is; the vmid changes when it is
// re-registered, the display name when it is renamed) and the disk by its device: never by
// d.Source, which is a temporary chain clone with a new name on every run when the VM has
// snapshots of its own. A key that misses only costs the speed of one run.
func (j *vmBackup) useCache(o *disk.Options, d FrozenDisk) {
	rc, ok := j.r.(interface{ Config() repo.Config })
	if j.o.CacheDir == "" || !ok {
		return
	}
	id := rc.Config().ID
	vmKey := j.vm.VMXPath
	if vmKey == "" {
		vmKey = j.vm.Name
	}
	dev := d.Device
	if dev == "" {
		dev = d.Name
	}
	o.Cache = disk.CachePath(j.o.CacheDir, id, "vm\x00"+vmKey+"\x00"+dev)
	o.RepoID = id
	o.Rehash = j.o.Rehash
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
	a.BlocksCached += b.BlocksCached
	a.BlocksPatched += b.BlocksPatched
}
