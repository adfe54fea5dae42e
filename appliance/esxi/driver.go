package esxi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"

	"github.com/snapferry/snapferry/appliance"
)

// Driver is appliance.Host for an ESXi host, driven through its shell tools.
type Driver struct {
	cfg Config

	syntaxOnce sync.Once
	syntax     RemoveSyntax
	syntaxErr  error
}

var _ appliance.Host = (*Driver)(nil)

// New checks that vim-cmd can be found and returns a driver. vmkfstools, esxcli and vmware are
// looked up when first used, so a host lacking one still serves what does not need it.
func New(cfg Config) (*Driver, error) {
	cfg.defaults()
	if _, err := exec.LookPath(cfg.VimCmd); err != nil {
		return nil, fmt.Errorf("esxi driver: %s not found (is this an ESXi host? set PATH or the command path): %w", cfg.VimCmd, err)
	}
	return &Driver{cfg: cfg}, nil
}

// run executes a host tool and returns its stdout. err is the process's failure (exit status)
// with stderr appended; callers judge stdout for faults.
func (d *Driver) run(ctx context.Context, name string, args ...string) (string, error) {
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if d.cfg.Env != nil {
		cmd.Env = d.cfg.Env
	}
	err := cmd.Run()
	if err != nil {
		if s := strings.TrimSpace(errb.String()); s != "" {
			err = fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, oneLine(s))
		} else {
			err = fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
	}
	return out.String(), err
}

// vim runs vim-cmd and turns a fault block or failure into an error naming op.
func (d *Driver) vim(ctx context.Context, op string, args ...string) (string, error) {
	out, err := d.run(ctx, d.cfg.VimCmd, args...)
	if e := outputError(op, out, err); e != nil {
		return out, e
	}
	return out, nil
}

// VMs lists the registered VMs with their .vmx mapped to a local path.
func (d *Driver) VMs(ctx context.Context) ([]appliance.VM, error) {
	out, err := d.vim(ctx, "list VMs", "vmsvc/getallvms")
	if err != nil {
		return nil, err
	}
	vms, _, err := ParseGetAllVMs(out)
	if err != nil {
		return nil, err
	}
	for i := range vms {
		if vms[i].LocalVMX, err = d.DatastoreFile(vms[i].VMXPath); err != nil {
			return nil, fmt.Errorf("list VMs: VM %s: %w", vms[i].ID, err)
		}
	}
	return vms, nil
}

// vmByID finds one registered VM.
func (d *Driver) vmByID(ctx context.Context, id string) (appliance.VM, error) {
	vms, err := d.VMs(ctx)
	if err != nil {
		return appliance.VM{}, err
	}
	for _, vm := range vms {
		if vm.ID == id {
			return vm, nil
		}
	}
	return appliance.VM{}, fmt.Errorf("VM %s: %w", id, appliance.ErrNotFound)
}

// Config reads a VM's .vmx and the descriptors of its disks.
func (d *Driver) Config(ctx context.Context, id string) (*appliance.VMConfig, error) {
	vm, err := d.vmByID(ctx, id)
	if err != nil {
		return nil, err
	}
	return d.ReadConfig(vm)
}

func (d *Driver) PowerState(ctx context.Context, id string) (appliance.PowerState, error) {
	out, err := d.vim(ctx, "power state of VM "+id, "vmsvc/power.getstate", id)
	if err != nil {
		return "", err
	}
	st, err := ParsePowerState(out)
	if err != nil {
		return "", fmt.Errorf("power state of VM %s: %w", id, err)
	}
	return st, nil
}

func (d *Driver) PowerOn(ctx context.Context, id string) error {
	out, err := d.run(ctx, d.cfg.VimCmd, "vmsvc/power.on", id)
	return checkPowerOutput("power on VM "+id, out, err)
}

func (d *Driver) PowerOff(ctx context.Context, id string) error {
	out, err := d.run(ctx, d.cfg.VimCmd, "vmsvc/power.off", id)
	return checkPowerOutput("power off VM "+id, out, err)
}

// Shutdown asks the guest to shut down; it returns at once (poll PowerState).
func (d *Driver) Shutdown(ctx context.Context, id string) error {
	_, err := d.vim(ctx, "shut down guest of VM "+id, "vmsvc/power.shutdown", id)
	return err
}

func (d *Driver) Snapshots(ctx context.Context, id string) ([]appliance.SnapshotInfo, error) {
	out, err := d.vim(ctx, "list snapshots of VM "+id, "vmsvc/snapshot.get", id)
	if err != nil {
		return nil, err
	}
	snaps, err := ParseSnapshotGet(out)
	if err != nil {
		return nil, fmt.Errorf("list snapshots of VM %s: %w", id, err)
	}
	return snaps, nil
}

// Register adds a .vmx (local path) to the inventory. Older hosts print no id: the driver then
// finds the VM by its .vmx in the inventory.
func (d *Driver) Register(ctx context.Context, vmx, name string) (string, error) {
	args := []string{"solo/registervm", d.HostPath(vmx)}
	if name != "" {
		args = append(args, name)
	}
	out, err := d.vim(ctx, "register "+vmx, args...)
	if err != nil {
		return "", err
	}
	id, err := ParseRegister(out)
	if err != nil || id != "" {
		return id, err
	}
	vms, err := d.VMs(ctx)
	if err != nil {
		return "", fmt.Errorf("register %s: find the new VM: %w", vmx, err)
	}
	for _, vm := range vms {
		if sameLocalFile(vm.LocalVMX, vmx) {
			return vm.ID, nil
		}
	}
	return "", fmt.Errorf("register %s: the host printed no id and the VM is not in the inventory", vmx)
}

func (d *Driver) Unregister(ctx context.Context, id string) error {
	_, err := d.vim(ctx, "unregister VM "+id, "vmsvc/unregister", id)
	return err
}

// CloneDisk runs vmkfstools -i SRC -d thin DST (local paths). Success is the exit status alone.
func (d *Driver) CloneDisk(ctx context.Context, src, dst string) error {
	return d.CloneDiskProgress(ctx, src, dst, nil)
}

// CloneDiskProgress is CloneDisk reporting percentages to progress as vmkfstools prints them.
func (d *Driver) CloneDiskProgress(ctx context.Context, src, dst string, progress func(pct int)) error {
	w := NewProgressWriter(progress)
	var errb bytes.Buffer
	cmd := exec.CommandContext(ctx, d.cfg.Vmkfstools, "-i", d.HostPath(src), "-d", "thin", d.HostPath(dst))
	cmd.Stdout, cmd.Stderr = w, &errb
	if d.cfg.Env != nil {
		cmd.Env = d.cfg.Env
	}
	err := cmd.Run()
	if err == nil {
		return nil
	}
	r := ParseCloneOutput(w.String() + "\n" + errb.String())
	op := fmt.Sprintf("clone disk %s to %s", src, dst)
	switch {
	case r.Code == NoSpaceCode:
		return fmt.Errorf("%s: %s: %w", op, r.Failure, appliance.ErrNoSpace)
	case r.Failure != "":
		return fmt.Errorf("%s: %s (code %d): %w", op, r.Failure, r.Code, err)
	}
	return fmt.Errorf("%s: %w: %s", op, err, oneLine(errb.String()))
}

// Datastores lists the mounted volumes with their local folders.
func (d *Driver) Datastores(ctx context.Context) ([]appliance.Datastore, error) {
	out, err := d.run(ctx, d.cfg.Esxcli, "storage", "filesystem", "list")
	if err != nil {
		return nil, fmt.Errorf("list datastores: %w", err)
	}
	dss, err := ParseFilesystemList(out)
	if err != nil {
		return nil, fmt.Errorf("list datastores: %w", err)
	}
	for i := range dss {
		dss[i].LocalPath = d.LocalPath(dss[i].MountPath)
	}
	return dss, nil
}

// Version asks `vmware -v`.
func (d *Driver) Version(ctx context.Context) (Version, error) {
	out, err := d.run(ctx, d.cfg.Vmware, "-v")
	if err != nil {
		return Version{}, fmt.Errorf("host version: %w", err)
	}
	return ParseVersion(out)
}

// IsFault reports whether err carries a vim fault of the given type ("vim.fault.NotFound").
func IsFault(err error, typ string) bool {
	var f *Fault
	return errors.As(err, &f) && f.Type == typ
}
