package vmjob

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/appliance/vmx"
	"github.com/snapferry/snapferry/images/disk"
	"github.com/snapferry/snapferry/images/overwrite"
	"github.com/snapferry/snapferry/images/progress"
	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/vmdk"
)

// RestoreOptions say where and how a VM snapshot is restored. Datastore and LockDir are required.
type RestoreOptions struct {
	Datastore string // target datastore name
	Name      string // new VM name; default the backed-up VM's name
	Register  bool   // register the restored VM (solo/registervm)
	Overwrite bool   // replace an existing VM of that name (unregister it, remove its files) once the restore is written
	PowerOff  bool   // with Overwrite: power a running VM of that name off (refused without it)
	PowerOn   bool   // power the restored VM on (implies Register)
	LockDir   string
	LockWait  time.Duration
	Progress  progress.Reporter
	Log       func(msg string)
}

// RestoreResult says what a restore created.
type RestoreResult struct {
	Name     string   `json:"name"`
	Dir      string   `json:"dir"`                // local folder of the restored VM
	VMX      string   `json:"vmx"`                // local path of its .vmx
	ID       string   `json:"id,omitempty"`       // inventory id when registered
	Disks    []string `json:"disks"`              // local paths of the restored descriptors
	Warnings []string `json:"warnings,omitempty"` // disks that were not in the backup and are disabled in the .vmx
	Removed  []string `json:"removed,omitempty"`  // files of the replaced VM that the restored VM does not use, removed (Overwrite)
}

// Restore writes a VM snapshot to a datastore as a new VM folder: thin disks named after the new
// VM, config files renamed, the .vmx rewritten for them, no snapshots. An existing VM of the name
// (registered or only a folder) is never touched unless Overwrite.
func Restore(ctx context.Context, h appliance.Host, bs repo.BlobStore, sn *repo.Snapshot, o RestoreOptions) (res RestoreResult, err error) {
	name, err := restoreName(sn, o)
	if err != nil {
		return res, err
	}
	if o.Progress == nil {
		o.Progress = progress.Nop{}
	}
	logf := func(format string, args ...any) {
		if o.Log != nil {
			o.Log(fmt.Sprintf(format, args...))
		}
	}
	res.Name = name
	lock, err := appliance.LockVM(ctx, o.LockDir, "name:"+name, o.LockWait)
	if err != nil {
		return res, fmt.Errorf("restore VM %s: %w", name, err)
	}
	defer lock.Unlock()

	ds, err := findDatastore(ctx, h, o.Datastore)
	if err != nil {
		return res, fmt.Errorf("restore VM %s: %w", name, err)
	}
	res.Dir = filepath.Join(ds.LocalPath, name)
	old, err := findExisting(ctx, h, name, res.Dir, o)
	if err != nil {
		return res, fmt.Errorf("restore VM %s: %w", name, err)
	}
	files, err := loadConfigTree(ctx, bs, *sn.Tree)
	if err != nil {
		return res, fmt.Errorf("restore VM %s: %w", name, err)
	}
	// Everything is written into a temporary folder beside the final one: until it is complete
	// the old VM (if any) stays registered, running and untouched, and nothing on the datastore
	// looks like a finished VM. A failed restore removes the folder.
	partial := filepath.Join(ds.LocalPath, overwrite.PartialName(name))
	if err := emptyFolder(partial); err != nil {
		return res, fmt.Errorf("restore VM %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			if rerr := os.RemoveAll(partial); rerr != nil {
				err = errors.Join(err, fmt.Errorf("remove the partial restore %s: %w", partial, rerr))
			}
		}
	}()
	if err := writeVMFiles(ctx, bs, sn, files, partial, o, &res, logf); err != nil {
		return res, fmt.Errorf("restore VM %s: %w", name, err)
	}
	// res is filled in by putInPlace: not evaluated in the same return statement.
	err = putInPlace(ctx, h, old, partial, o, &res, logf)
	return res, err
}

// restoreName is the restored VM's name (its folder's too): o.Name, or the backed-up VM's.
// It also refuses a snapshot that is not a VM's and options that lack what a restore needs.
func restoreName(sn *repo.Snapshot, o RestoreOptions) (string, error) {
	if sn.Kind != repo.SnapshotVM || sn.VM == nil || sn.Tree == nil {
		return "", fmt.Errorf("restore VM: snapshot of %q is a %s snapshot, not a VM", sn.Source, sn.Kind)
	}
	name := o.Name
	if name == "" {
		name = sn.VM.Name
	}
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return "", fmt.Errorf("restore VM: %q is not a usable folder name for the VM (empty, or has '/'): give one with --name", name)
	}
	if o.Datastore == "" || o.LockDir == "" {
		return "", errors.New("restore VM: Datastore and LockDir are required")
	}
	return name, nil
}

// emptyFolder makes dir an empty folder, removing what a killed restore left there.
func emptyFolder(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove the leftover %s: %w", dir, err)
	}
	return os.MkdirAll(dir, 0o755)
}

// writeVMFiles writes the VM into the folder partial: disks first (a .vmx on the datastore
// always has its disks), named after the new VM, then the config files rewritten for them.
func writeVMFiles(ctx context.Context, bs repo.BlobStore, sn *repo.Snapshot, files []configFile, partial string,
	o RestoreOptions, res *RestoreResult, logf func(string, ...any)) error {
	name := res.Name
	newFile := map[string]string{} // device -> new descriptor file name
	for i, d := range sn.Disks {
		fn := name + ".vmdk"
		if i > 0 {
			fn = name + "_" + strconv.Itoa(i) + ".vmdk"
		}
		logf("VM %s: restoring disk %s (%s) as %s", name, d.Name, d.Device, fn)
		if err := vmdk.Restore(ctx, bs, d, filepath.Join(partial, fn), disk.RestoreOptions{Progress: o.Progress}); err != nil {
			return fmt.Errorf("disk %s: %w", d.Name, err)
		}
		newFile[strings.ToLower(d.Device)] = fn
		res.Disks = append(res.Disks, filepath.Join(res.Dir, fn))
	}
	vmx, err := writeConfigFiles(files, partial, name, newFile, res)
	if err != nil {
		return err
	}
	res.VMX = filepath.Join(res.Dir, filepath.Base(vmx))
	return nil
}

// putInPlace moves the complete VM from partial to its folder (replacing an old VM of the name,
// if any), registers and powers it on as asked, and only then removes the old VM's files that
// the new one does not use.
func putInPlace(ctx context.Context, h appliance.Host, old *replaced, partial string, o RestoreOptions,
	res *RestoreResult, logf func(string, ...any)) error {
	name := res.Name
	if err := old.replaceWith(ctx, h, partial, logf); err != nil {
		return fmt.Errorf("restore VM %s: %w", name, err)
	}
	var err error
	if o.Register || o.PowerOn {
		if res.ID, err = h.Register(ctx, res.VMX, name); err != nil {
			return errors.Join(fmt.Errorf("restore VM %s: %w", name, err), old.undo(ctx, h, partial))
		}
		logf("VM %s: registered as %s", name, res.ID)
	}
	if o.PowerOn {
		// The restore itself is done: a VM that does not start is reported, not removed.
		if err := h.PowerOn(ctx, res.ID); err != nil {
			res.Removed, _ = old.removeUnused(res.Dir, logf)
			return fmt.Errorf("restore VM %s: restored and registered, but power on failed: %w", name, err)
		}
	}
	// Only now, with the new VM in place, do the old VM's files go.
	res.Removed, err = old.removeUnused(res.Dir, logf)
	if err != nil {
		return fmt.Errorf("restore VM %s: the restore succeeded, but removing the replaced VM's files failed: %w", name, err)
	}
	return nil
}

func findDatastore(ctx context.Context, h appliance.Host, name string) (appliance.Datastore, error) {
	dss, err := h.Datastores(ctx)
	if err != nil {
		return appliance.Datastore{}, err
	}
	var names []string
	for _, d := range dss {
		if d.Name == name {
			return d, nil
		}
		names = append(names, strconv.Quote(d.Name))
	}
	return appliance.Datastore{}, fmt.Errorf("no datastore %q on this host (datastores: %s)", name, strings.Join(names, ", "))
}

// writeConfigFiles writes the config files renamed for the new VM and the rewritten .vmx (last,
// atomically). The .vmsd is written empty: the restored VM has no snapshots.
func writeConfigFiles(files []configFile, dir, name string, newFile map[string]string, res *RestoreResult) (string, error) {
	var vmxFile *configFile
	for i := range files {
		if strings.HasSuffix(files[i].Name, ".vmx") {
			vmxFile = &files[i]
		}
	}
	if vmxFile == nil {
		return "", errors.New("the snapshot holds no .vmx")
	}
	oldStem := strings.TrimSuffix(vmxFile.Name, ".vmx")
	conf, err := vmx.Parse(string(vmxFile.Data))
	if err != nil {
		return "", err
	}
	rename := func(n string) string {
		if strings.HasPrefix(n, oldStem+".") {
			return name + n[len(oldStem):]
		}
		return n
	}
	for _, f := range files {
		if f.Name == vmxFile.Name {
			continue
		}
		data := f.Data
		if strings.HasSuffix(f.Name, ".vmsd") {
			data = nil
		}
		if err := os.WriteFile(filepath.Join(dir, rename(f.Name)), data, f.Mode|0o600); err != nil {
			return "", err
		}
	}
	set := map[string]string{"displayName": name}
	if nv := conf.Value("nvram"); nv != "" {
		set["nvram"] = rename(filepath.Base(nv))
	}
	if xf := conf.Value("extendedConfigFile"); xf != "" {
		set["extendedConfigFile"] = rename(filepath.Base(xf))
	}
	for _, d := range conf.Disks() {
		if fn, ok := newFile[strings.ToLower(d.Device)]; ok {
			set[d.Device+".fileName"] = fn
			continue
		}
		set[d.Device+".present"] = "FALSE"
		res.Warnings = append(res.Warnings, fmt.Sprintf("disk %s (%s) was not in the backup: disabled in the restored .vmx", d.Device, d.FileName))
	}
	// The swap file and its derived path belong to the old VM; the host makes new ones.
	drop := func(k string) bool { return k == "sched.swap.derivedname" }
	text := vmx.Edit(string(vmxFile.Data), set, drop)
	vmx := filepath.Join(dir, name+".vmx")
	tmp := vmx + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), vmxFile.Mode|0o600); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, vmx); err != nil {
		return "", err
	}
	return vmx, nil
}
