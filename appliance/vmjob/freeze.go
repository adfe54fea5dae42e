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

// freezer is one Freeze in progress: what its steps found and the undos they registered.
type freezer struct {
	h  appliance.Host
	vm appliance.VM
	o  *BackupOptions
	f  *Frozen

	disks       []appliance.Disk
	wasOn       bool          // the VM was powered on when Freeze began
	poweredDown bool          // we shut the guest down (or asked to): power it on again
	settle      time.Duration // how long a guest shutdown we asked for may still take to finish
	// chains maps each picked disk to the descriptor chain that holds its state at the moment
	// of consistency: the frozen files under our snapshot, or (cold) the disks themselves.
	chains map[string][]string
	area   *cloneArea // where chains of user snapshots are cloned, once one is
	// undos run last first when run returns; a failing one is joined to run's error.
	undos []func() error
}

func (z *freezer) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	z.f.Warnings = append(z.f.Warnings, msg)
	z.o.logf("VM %s: %s", z.vm.Name, msg)
}

// run freezes the VM and calls fn; every step that needs undoing registers its undo before going
// on, and the undos run whatever happens (errors, cancellation). err is named so the deferred
// undos can join their failures to it.
func (z *freezer) run(ctx context.Context, fn func(f *Frozen) error) (err error) {
	defer z.undo(&err)
	steps := []func(context.Context) error{
		z.readConfig,       // leftovers of killed runs removed, disks picked
		z.stageConfigFiles, // config files copied as they are before our snapshot
		z.powerDown,        // warm and cold: the guest shut down
		z.freezeDisks,      // our snapshot (hot, warm): base disks stop changing
		z.cloneChains,      // disks spread over user snapshots cloned into one
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return fn(z.f)
}

// undo runs the registered undos, last first, joining their failures to *err.
func (z *freezer) undo(err *error) {
	for i := len(z.undos) - 1; i >= 0; i-- {
		if uerr := z.undos[i](); uerr != nil {
			*err = errors.Join(*err, uerr)
		}
	}
}

// readConfig removes snapshots killed runs left, reads the VM's configuration and picks the
// disks to copy; a VM with snapshots of its own is refused unless the options allow clones.
func (z *freezer) readConfig(ctx context.Context) error {
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
	z.disks = z.pickDisks(cfg)
	if len(z.disks) == 0 {
		return errors.New("no disk to copy (all excluded or skipped)")
	}
	return nil
}

// stageConfigFiles copies the config files before our snapshot repoints the .vmx at delta disks:
// a restore needs the .vmx that names the base disks.
func (z *freezer) stageConfigFiles(context.Context) error {
	stageDir, staged, err := stageConfig(z.f.Config.Files, z.o.TempDir)
	if err != nil {
		return err
	}
	z.undos = append(z.undos, func() error {
		os.RemoveAll(stageDir)
		return nil
	})
	z.f.ConfigFiles = staged
	return nil
}

// powerDown shuts the guest down for warm and cold mode, after registering the power-on that
// undoes it.
func (z *freezer) powerDown(ctx context.Context) error {
	h, vm, o := z.h, z.vm, z.o
	power, err := h.PowerState(ctx, vm.ID)
	if err != nil {
		return err
	}
	z.wasOn = power == appliance.PoweredOn
	z.undos = append(z.undos, func() error {
		if z.poweredDown {
			return powerOnAgain(ctx, h, vm, z.settle, o.PollInterval, o.Clock)
		}
		return nil
	})
	if o.Mode != Hot && z.wasOn {
		o.logf("VM %s: shutting the guest down (%s mode)", vm.Name, o.Mode)
		if err := shutdownGuest(ctx, h, vm, o.ShutdownTimeout, o.ForceOff, o.PollInterval, o.Clock); err != nil {
			// The guest may be on its way down (a cancelled wait): let it finish, then power on.
			if !errors.Is(err, appliance.ErrToolsNotRunning) {
				z.poweredDown, z.settle = true, max(o.ShutdownTimeout, time.Minute)
			}
			return err
		}
		z.poweredDown = true
	}
	return nil
}

// freezeDisks finds, per picked disk, the chain that holds its state at the moment of
// consistency: cold mode copies the disks themselves; hot and warm take our snapshot (warm
// powers the VM on again right after) and copy the files under it.
func (z *freezer) freezeDisks(ctx context.Context) error {
	h, vm, o := z.h, z.vm, z.o
	z.chains = map[string][]string{}
	if o.Mode == Cold {
		for _, d := range z.disks {
			z.chains[d.Name] = d.Chain
		}
		return nil
	}
	hot := z.wasOn && o.Mode == Hot
	snap, err := h.CreateSnapshot(ctx, vm.ID, SnapshotPrefix+o.JobID, "snapferry job "+o.JobID,
		appliance.SnapshotOptions{Quiesce: o.Quiesce && hot, Memory: o.Memory && hot})
	if err != nil {
		// A failed create may still leave a snapshot on some hosts: the same cleanup applies.
		z.removeOursIfPresent(ctx)
		return err
	}
	z.undos = append(z.undos, func() error {
		if rerr := removeWithRetry(ctx, h, vm, snap, o); rerr != nil {
			return fmt.Errorf("remove our VM snapshot %q: %w (the next run removes it; or remove it on the host)", snap.Name, rerr)
		}
		return nil
	})
	if o.Mode == Warm && z.poweredDown {
		if err := powerOnAgain(ctx, h, vm, 0, o.PollInterval, o.Clock); err != nil {
			return err
		}
		z.poweredDown = false
	}
	after, err := h.Config(ctx, vm.ID)
	if err != nil {
		return err
	}
	for _, d := range z.disks {
		for _, a := range after.Disks {
			if a.Device == d.Device && len(a.Chain) >= 2 {
				z.chains[d.Name] = a.Chain[1:]
			}
		}
		if z.chains[d.Name] == nil {
			return fmt.Errorf("disk %s (%s) has no frozen file under our snapshot", d.Name, d.Device)
		}
	}
	return nil
}

// cloneChains gives every picked disk one flat source: a disk whose state is spread over user
// snapshot deltas is cloned into a temporary thin disk (all clones in one area, sized for all).
func (z *freezer) cloneChains(ctx context.Context) error {
	h, vm, o := z.h, z.vm, z.o
	z.undos = append(z.undos, func() error { return z.area.remove() })
	var need int64 // room for the clones of all disks whose state is spread over user deltas
	for _, d := range z.disks {
		if len(z.chains[d.Name]) > 1 {
			need += d.Size
		}
	}
	for _, d := range z.disks {
		chain := z.chains[d.Name]
		src := chain[0]
		if len(chain) > 1 {
			var err error
			if z.area == nil {
				if z.area, err = openCloneArea(ctx, h, o, need); err != nil {
					return fmt.Errorf("disk %s: %w", d.Name, err)
				}
			}
			o.logf("VM %s: cloning disk %s's snapshot chain to a temporary thin disk", vm.Name, d.Name)
			if src, err = z.area.clone(ctx, h, d, src); err != nil {
				return fmt.Errorf("disk %s: %w", d.Name, err)
			}
		}
		z.f.Disks = append(z.f.Disks, FrozenDisk{Disk: d, Source: src})
	}
	return nil
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
