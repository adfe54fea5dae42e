package vmjob

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/snapferry/snapferry/appliance"
)

// Frozen is a VM held at one moment of consistency while Freeze's callback runs: the disks to
// copy, each readable as a standalone flat disk, and the VM's config files as they were before
// our snapshot. Every path it names is valid only until the callback returns.
type Frozen struct {
	VM   appliance.VM
	Mode Mode
	// Config is the VM as read before our snapshot: its own .vmx values and disk chains.
	Config *appliance.VMConfig
	// Disks are the disks to copy in .vmx order; excluded and skipped ones are left out.
	Disks []FrozenDisk
	// ConfigFiles are staged copies (local paths) of the .vmx, .nvram, .vmxf and .vmsd, taken
	// before our snapshot repointed the .vmx at delta disks.
	ConfigFiles []string
	Partial     bool     // some disks were skipped (see Warnings)
	Warnings    []string // one line per skipped disk
}

// FrozenDisk is one disk of a Frozen VM.
type FrozenDisk struct {
	appliance.Disk // the disk as the VM's .vmx and chain name it
	// Source is the local path of a descriptor with one flat extent that holds the disk's state
	// at the moment of consistency and does not change while the callback runs: the base disk
	// under our snapshot (hot, warm), the disk itself (cold), or a temporary clone of the chain
	// when the VM has snapshots of its own.
	Source string
}

// Freeze holds vm at one moment of consistency, as o.Mode says, and calls fn with what to copy.
// It takes the VM's lock, removes snapshots that killed earlier runs left, stages the config
// files, shuts the guest down for warm and cold, takes our snapshot snapferry-<JobID> (hot,
// warm) and clones chains of user snapshots into a temporary area. Whatever fn returns, and
// also when ctx is cancelled, Freeze undoes all of it before it returns: our snapshot is
// removed (with retries), a VM it shut down is powered on, clones and staged files are deleted.
// An undo that fails is joined to the returned error. Backup and replica both copy through it,
// so they share these guarantees.
func Freeze(ctx context.Context, h appliance.Host, vm appliance.VM, o BackupOptions, fn func(f *Frozen) error) error {
	o.defaults()
	if o.JobID == "" || o.LockDir == "" {
		return errors.New("freeze VM: JobID and LockDir are required")
	}
	lock, err := appliance.LockVM(ctx, o.LockDir, vm.ID, o.LockWait)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	fz := &freezer{h: h, vm: vm, o: &o, f: &Frozen{VM: vm, Mode: o.Mode}}
	return fz.run(ctx, fn)
}

// freezer is one Freeze in progress.
type freezer struct {
	h  appliance.Host
	vm appliance.VM
	o  *BackupOptions
	f  *Frozen
}

func (z *freezer) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	z.f.Warnings = append(z.f.Warnings, msg)
	z.o.logf("VM %s: %s", z.vm.Name, msg)
}

// run freezes the VM and calls fn; every step that needs undoing registers its undo before going
// on, and the undo runs whatever happens (errors, cancellation). err is named so the deferred
// undos can join their failures to it.
func (z *freezer) run(ctx context.Context, fn func(f *Frozen) error) (err error) {
	h, vm, o := z.h, z.vm, z.o
	userSnaps, err := removeLeftovers(ctx, h, vm, o)
	if err != nil {
		return err
	}
	cfg, err := h.Config(ctx, vm.ID)
	if err != nil {
		return err
	}
	z.f.Config = cfg
	if len(userSnaps) > 0 && o.UserSnapshots == Refuse {
		return fmt.Errorf("the VM has %d snapshot(s) of its own (first: %q); copying it needs a temporary clone of its disk chain: allow that, or consolidate the snapshots first", len(userSnaps), userSnaps[0].Name)
	}
	disks := z.pickDisks(cfg)
	if len(disks) == 0 {
		return errors.New("no disk to copy (all excluded or skipped)")
	}
	stageDir, staged, err := stageConfig(cfg.Files, o.TempDir)
	if err != nil {
		return err
	}
	defer os.RemoveAll(stageDir)
	z.f.ConfigFiles = staged

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

	// chains maps each picked disk to the descriptor chain that holds its state at the moment of
	// consistency: the frozen files under our snapshot, or (cold) the disks themselves.
	chains := map[string][]string{}
	if o.Mode == Cold {
		for _, d := range disks {
			chains[d.Name] = d.Chain
		}
	} else {
		var snap appliance.SnapshotInfo
		snap, err = h.CreateSnapshot(ctx, vm.ID, SnapshotPrefix+o.JobID, "snapferry job "+o.JobID,
			appliance.SnapshotOptions{Quiesce: o.Quiesce && wasOn && o.Mode == Hot, Memory: o.Memory && wasOn && o.Mode == Hot})
		if err != nil {
			// A failed create may still leave a snapshot on some hosts: the same cleanup applies.
			z.removeOursIfPresent(ctx)
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
					chains[d.Name] = a.Chain[1:]
				}
			}
			if chains[d.Name] == nil {
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
	var need int64 // room for the clones of all disks whose state is spread over user deltas
	for _, d := range disks {
		if len(chains[d.Name]) > 1 {
			need += d.Size
		}
	}
	for _, d := range disks {
		chain := chains[d.Name]
		src := chain[0]
		if len(chain) > 1 {
			if area == nil {
				if area, err = openCloneArea(ctx, h, o, need); err != nil {
					return fmt.Errorf("disk %s: %w", d.Name, err)
				}
			}
			o.logf("VM %s: cloning disk %s's snapshot chain to a temporary thin disk", vm.Name, d.Name)
			if src, err = area.clone(ctx, h, d, src); err != nil {
				return fmt.Errorf("disk %s: %w", d.Name, err)
			}
		}
		z.f.Disks = append(z.f.Disks, FrozenDisk{Disk: d, Source: src})
	}
	return fn(z.f)
}

// pickDisks applies ExcludeDisks and skips what cannot be copied consistently, with warnings.
func (z *freezer) pickDisks(cfg *appliance.VMConfig) []appliance.Disk {
	var out []appliance.Disk
	for _, d := range cfg.Disks {
		switch {
		case appliance.DiskExcluded(d, z.o.ExcludeDisks):
			z.o.logf("VM %s: disk %s (%s) excluded", z.vm.Name, d.Name, d.Device)
		case d.RDM != appliance.NotRDM:
			z.f.Partial = true
			z.warn("disk %s (%s) is a %s raw device mapping: skipped (copy it from inside the guest)", d.Name, d.Device, d.RDM)
		case d.Independent && z.o.Mode != Cold:
			z.f.Partial = true
			z.warn("disk %s (%s) is independent (%s): snapshots leave it out, skipped (use --mode=cold to include it)", d.Name, d.Device, d.Mode)
		default:
			out = append(out, d)
		}
	}
	return out
}

// removeOursIfPresent removes a snapshot of this job that a failed create left behind.
func (z *freezer) removeOursIfPresent(ctx context.Context) {
	snaps, err := z.h.Snapshots(context.WithoutCancel(ctx), z.vm.ID)
	if err != nil {
		return
	}
	for _, s := range snaps {
		if s.Name == SnapshotPrefix+z.o.JobID {
			if err := removeWithRetry(ctx, z.h, z.vm, s, z.o); err != nil {
				z.warn("could not remove snapshot %q after a failed create: %v", s.Name, err)
			}
		}
	}
}
