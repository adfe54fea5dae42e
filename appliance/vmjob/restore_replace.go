package vmjob

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/images/overwrite"
)

// replaced is what a VM restore replaces: the VMs registered under the restored name and the
// folder of that name on the target datastore. Nothing of it is touched until the restored VM
// is completely written (replaceWith), and its files go only once the new VM is in place
// (removeUnused), so a failed restore leaves the old VM as it was.
type replaced struct {
	dir       string // the restored VM's final folder
	dirExists bool
	vms       []*appliance.VMConfig
	running   map[string]bool // ids of those that were not powered off
	// Taken before anything moves, compared with symlinks resolved (a VM's paths may go through
	// /vmfs/volumes/UUID, the datastore's through its name): other folders of the old VMs, and
	// their disk files outside every such folder (a second disk on another datastore), as the
	// host names them.
	otherDirs []string
	outside   []string
	// shared are the folders of registered VMs that are not replaced: an old VM's other folder
	// among them is never removed, since it holds another VM's files too.
	shared []string
	aside  string // where the old folder was moved while the new one took its place
	done   bool   // replaceWith succeeded
}

// findExisting looks for a VM or folder the restore would replace. Without Overwrite any is
// refused (exit 3, as every restore that keeps what is there); with it, a VM that is running
// (or suspended) is refused unless PowerOff.
func findExisting(ctx context.Context, h appliance.Host, name, dir string, o RestoreOptions) (*replaced, error) {
	vms, err := h.VMs(ctx)
	if err != nil {
		return nil, err
	}
	r := &replaced{dir: dir, running: map[string]bool{}}
	for _, vm := range vms {
		if vm.Name != name {
			if vm.LocalVMX != "" {
				r.shared = append(r.shared, filepath.Dir(vm.LocalVMX))
			}
			continue
		}
		cfg, err := h.Config(ctx, vm.ID)
		if err != nil {
			return nil, fmt.Errorf("read the existing VM %s: %w", vm.ID, err)
		}
		r.vms = append(r.vms, cfg)
	}
	_, statErr := os.Lstat(dir)
	r.dirExists = statErr == nil
	if len(r.vms) == 0 && !r.dirExists {
		return r, nil
	}
	r.collectFiles()
	if !o.Overwrite {
		if len(r.vms) > 0 {
			vm := r.vms[0]
			return nil, &overwrite.NotReplaced{Paths: []string{vm.LocalVMX}, Msg: fmt.Sprintf(
				"a VM named %q exists (id %s, %s); restore refused: use --overwrite to replace it or --name to restore beside it",
				name, vm.ID, vm.VMXPath)}
		}
		return nil, &overwrite.NotReplaced{Paths: []string{dir}, Msg: fmt.Sprintf(
			"folder %s exists; restore refused: use --overwrite to replace it or --name to restore beside it", dir)}
	}
	for _, vm := range r.vms {
		st, err := h.PowerState(ctx, vm.ID)
		if err != nil {
			return nil, fmt.Errorf("power state of the existing VM %s: %w", vm.ID, err)
		}
		if st == appliance.PoweredOff {
			continue
		}
		if !o.PowerOff {
			return nil, fmt.Errorf("the VM %q to replace (id %s) is powered %s: restore --overwrite would power it off; "+
				"add --power-off to allow that, or restore beside it with --name", name, vm.ID, st)
		}
		r.running[vm.ID] = true
	}
	return r, nil
}

// collectFiles fills otherDirs and outside from the old VMs' configs.
func (r *replaced) collectFiles() {
	real := func(p string) string {
		if q, err := filepath.EvalSymlinks(p); err == nil {
			return q
		}
		return p
	}
	canon := func(p string) string { return filepath.Join(real(filepath.Dir(p)), filepath.Base(p)) }
	under := func(p, dir string) bool { return strings.HasPrefix(p, dir+string(filepath.Separator)) }
	target := real(r.dir)
	dirs := []string{target}
	var shared []string
	for _, d := range r.shared {
		shared = append(shared, real(d))
	}
	for _, vm := range r.vms {
		if d := real(vm.Dir); !slices.Contains(dirs, d) {
			if !slices.Contains(shared, d) {
				r.otherDirs = append(r.otherDirs, vm.Dir)
			}
			dirs = append(dirs, d)
		}
	}
	seen := map[string]bool{}
	for _, vm := range r.vms {
		for _, d := range vm.Disks {
			for _, p := range diskFiles(d) {
				c := canon(p)
				if !seen[c] && !slices.ContainsFunc(dirs, func(dir string) bool { return under(c, dir) }) {
					seen[c] = true
					r.outside = append(r.outside, p)
				}
			}
		}
	}
}

// replaceWith puts the completely written folder partial in the place of the old VM: powers the
// old VMs off (PowerOff was given), unregisters them, moves the old folder aside and partial
// in. On failure it puts the old VM back as far as it can.
func (r *replaced) replaceWith(ctx context.Context, h appliance.Host, partial string, logf func(string, ...any)) (err error) {
	var unregistered []*appliance.VMConfig
	defer func() {
		if err != nil {
			err = errors.Join(err, r.restoreOld(ctx, h, unregistered, partial))
		}
	}()
	for _, vm := range r.vms {
		if r.running[vm.ID] {
			logf("VM %s: powering off the existing VM %s to replace it (--power-off)", vm.Name, vm.ID)
			if err := h.PowerOff(ctx, vm.ID); err != nil && !errors.Is(err, appliance.ErrInvalidPowerState) {
				return fmt.Errorf("replace VM %s: %w", vm.ID, err)
			}
		}
		logf("VM %s: unregistering the existing VM %s", vm.Name, vm.ID)
		if err := h.Unregister(ctx, vm.ID); err != nil {
			return fmt.Errorf("replace VM %s: %w", vm.ID, err)
		}
		unregistered = append(unregistered, vm)
	}
	if r.dirExists {
		r.aside = filepath.Join(filepath.Dir(r.dir), overwrite.PartialName(filepath.Base(r.dir)+".replaced"))
		if err := os.RemoveAll(r.aside); err != nil {
			return fmt.Errorf("remove the leftover %s: %w", r.aside, err)
		}
		if err := os.Rename(r.dir, r.aside); err != nil {
			r.aside = ""
			return fmt.Errorf("move the old folder %s aside: %w", r.dir, err)
		}
	}
	if err := os.Rename(partial, r.dir); err != nil {
		return fmt.Errorf("move the restored VM into %s: %w", r.dir, err)
	}
	r.done = true
	return nil
}

// undo takes the new folder out again (back to partial, which the caller removes) and puts the
// old VM back, for a restore that failed after replaceWith (registering the new VM).
func (r *replaced) undo(ctx context.Context, h appliance.Host, partial string) error {
	if !r.done {
		return nil
	}
	if err := os.Rename(r.dir, partial); err != nil {
		return fmt.Errorf("take the new VM out of %s: %w", r.dir, err)
	}
	return r.restoreOld(ctx, h, r.vms, partial)
}

// restoreOld moves the old folder back and registers (and powers on) the old VMs again.
func (r *replaced) restoreOld(ctx context.Context, h appliance.Host, unregistered []*appliance.VMConfig, partial string) error {
	var errs []error
	if r.aside != "" {
		if _, err := os.Lstat(r.dir); err == nil {
			if err := os.Rename(r.dir, partial); err != nil {
				errs = append(errs, err)
			}
		}
		if err := os.Rename(r.aside, r.dir); err != nil {
			errs = append(errs, fmt.Errorf("put the old VM's folder back from %s: %w", r.aside, err))
		}
		r.aside = ""
	}
	for _, vm := range unregistered {
		id, err := h.Register(ctx, vm.LocalVMX, vm.Name)
		if err != nil {
			errs = append(errs, fmt.Errorf("register the old VM %s again: %w", vm.LocalVMX, err))
			continue
		}
		if r.running[vm.ID] {
			if err := h.PowerOn(ctx, id); err != nil {
				errs = append(errs, fmt.Errorf("power the old VM %s on again: %w", id, err))
			}
		}
	}
	r.done = false
	return errors.Join(errs...)
}

// removeUnused removes the old VM's files once the restored VM is in place in newDir, and
// returns those the restored VM does not use (the old folder's files whose names the new folder
// does not have, the old VMs' other folders and their disks elsewhere, a second datastore
// included), sorted.
func (r *replaced) removeUnused(newDir string, logf func(string, ...any)) ([]string, error) {
	var listed []string
	var errs []error
	listFiles := func(dir string, fn func(rel string)) {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(dir, p)
				fn(rel)
			}
			return nil
		})
	}
	if r.aside != "" {
		listFiles(r.aside, func(rel string) {
			if _, err := os.Lstat(filepath.Join(newDir, rel)); os.IsNotExist(err) {
				listed = append(listed, filepath.Join(newDir, rel))
			}
		})
		if err := os.RemoveAll(r.aside); err != nil {
			errs = append(errs, err)
		}
		r.aside = ""
	}
	for _, dir := range r.otherDirs {
		listFiles(dir, func(rel string) { listed = append(listed, filepath.Join(dir, rel)) })
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range r.outside {
		err := os.Remove(p)
		switch {
		case err == nil:
			listed = append(listed, p)
		case !os.IsNotExist(err):
			errs = append(errs, err)
		}
	}
	r.otherDirs, r.outside = nil, nil
	sort.Strings(listed)
	for _, p := range listed {
		logf("removed %s (the replaced VM's, not used by the restored VM)", p)
	}
	return listed, errors.Join(errs...)
}

// diskFiles are the files of a disk: its descriptors and their extents (flat, delta, sesparse,
// change tracking).
func diskFiles(d appliance.Disk) []string {
	out := []string{d.Extent}
	for _, desc := range append([]string{d.Descriptor}, d.Chain...) {
		if desc == "" {
			continue
		}
		stem := strings.TrimSuffix(desc, ".vmdk")
		out = append(out, desc)
		for _, suffix := range []string{"-delta.vmdk", "-sesparse.vmdk", "-ctk.vmdk"} {
			if _, err := os.Lstat(stem + suffix); err == nil {
				out = append(out, stem+suffix)
			}
		}
	}
	seen := map[string]bool{}
	var uniq []string
	for _, p := range out {
		if !seen[p] {
			seen[p] = true
			uniq = append(uniq, p)
		}
	}
	return uniq
}
