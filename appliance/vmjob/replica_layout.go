package vmjob

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/snapferry/snapferry/appliance/esxi"
	"github.com/snapferry/snapferry/images/vmdk"
	"github.com/snapferry/snapferry/transfer/replica"
)

// replicaLayout lists the files of a frozen VM's replica, all in one folder so the far copy can
// be registered and powered on as it is:
//
//   - per disk its frozen flat extent (Disk: a sparse block-diff update), named after the disk's
//     base descriptor (x.vmdk -> x-flat.vmdk; a second disk of the same name on another
//     datastore becomes x_1.vmdk), and a descriptor naming that extent with no parent and
//     no change-tracking file, keeping the source's content id so an unchanged disk sends an
//     unchanged descriptor;
//   - the .vmx with every copied disk's fileName pointing at its descriptor there (disks that
//     lived on other datastores become relative), disks not copied marked not present, the swap
//     file's derived name dropped; .nvram and .vmxf as they are; the .vmsd empty, since the copy
//     has no snapshots.
//
// Rewritten files are written into a new folder under tempDir, which the caller removes
// (removeStage) once the push is over. notes say which disks the copy leaves out.
func replicaLayout(fz *Frozen, tempDir string) (dir string, files []replica.File, notes []string, err error) {
	dir, err = os.MkdirTemp(tempDir, "snapferry-replica-")
	if err != nil {
		return "", nil, nil, fmt.Errorf("stage replica files: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
			dir = ""
		}
	}()
	taken := map[string]bool{}
	newFile := map[string]string{} // device (lower case) -> descriptor name in the replica
	var flats, descs []replica.File
	for _, d := range fz.Disks {
		// The base disk's name: with user snapshots the .vmx names a delta (x-000001.vmdk),
		// but the copy is a standalone disk.
		base := d.Base
		if base == "" {
			base = d.FileName
		}
		name := freeDiskName(filepath.Base(base), taken)
		flat, desc, err := stageDescriptor(d, name, dir)
		if err != nil {
			return "", nil, nil, fmt.Errorf("disk %s (%s): %w", d.Name, d.Device, err)
		}
		flats = append(flats, flat)
		descs = append(descs, desc)
		newFile[strings.ToLower(d.Device)] = name
	}
	var vmx string
	var others []replica.File
	for _, f := range fz.ConfigFiles {
		base := filepath.Base(f)
		switch {
		case strings.HasSuffix(base, ".vmx"):
			vmx = f
			continue
		case strings.HasSuffix(base, ".vmsd"):
			empty := filepath.Join(dir, base)
			if err := os.WriteFile(empty, nil, 0o600); err != nil {
				return "", nil, nil, fmt.Errorf("stage %s: %w", base, err)
			}
			f = empty
		}
		others = append(others, replica.File{Name: base, Source: f})
	}
	if vmx == "" {
		return "", nil, nil, fmt.Errorf("the VM's config files (%d) hold no .vmx", len(fz.ConfigFiles))
	}
	staged, notes, err := stageVMX(vmx, dir, newFile, others)
	if err != nil {
		return "", nil, nil, err
	}
	files = append(append(append(flats, descs...), others...), replica.File{Name: filepath.Base(vmx), Source: staged})
	return dir, files, notes, nil
}

// freeDiskName picks the replica's descriptor name for a disk: its own base name, or with _1,
// _2... added when another disk (from another datastore) took it. The flat extent's name is
// reserved with it.
func freeDiskName(base string, taken map[string]bool) string {
	stem := strings.TrimSuffix(base, filepath.Ext(base))
	name := stem + ".vmdk"
	for i := 1; taken[strings.ToLower(name)] || taken[strings.ToLower(vmdk.FlatName(name))]; i++ {
		name = fmt.Sprintf("%s_%d.vmdk", stem, i)
	}
	taken[strings.ToLower(name)] = true
	taken[strings.ToLower(vmdk.FlatName(name))] = true
	return name
}

// stageDescriptor writes the replica's descriptor for a frozen disk into dir and returns the
// two files to push: the frozen flat extent under its new name, and that descriptor.
func stageDescriptor(d FrozenDisk, name, dir string) (flat, desc replica.File, err error) {
	dd, _, err := vmdk.ReadDescriptor(d.Source)
	if err != nil {
		return flat, desc, err
	}
	e, err := dd.FlatExtent()
	if err != nil {
		return flat, desc, fmt.Errorf("%s: %w", d.Source, err)
	}
	extent, err := vmdk.ExtentPath(d.Source, e)
	if err != nil {
		return flat, desc, err
	}
	fi, err := os.Stat(extent)
	if err != nil {
		return flat, desc, fmt.Errorf("flat extent of %s: %w", d.Source, err)
	}
	if fi.Mode().IsRegular() && fi.Size() != e.Size() {
		// A far copy with a wrong size would not boot; this is a copy in progress or a bad pair.
		return flat, desc, fmt.Errorf("flat extent %s holds %d bytes but %s says %d", extent, fi.Size(), d.Source, e.Size())
	}
	flatName := vmdk.FlatName(name)
	text, err := dd.ForRestore(flatName, dd.CID)
	if err != nil {
		return flat, desc, fmt.Errorf("%s: %w", d.Source, err)
	}
	staged := filepath.Join(dir, name)
	if err := os.WriteFile(staged, text, 0o600); err != nil {
		return flat, desc, fmt.Errorf("stage descriptor %s: %w", name, err)
	}
	return replica.File{Name: flatName, Source: extent, Disk: true}, replica.File{Name: name, Source: staged}, nil
}

// stageVMX writes the replica's .vmx into dir (see replicaLayout) and returns its path and a note
// per disk that the copy leaves out.
func stageVMX(src, dir string, newFile map[string]string, others []replica.File) (string, []string, error) {
	b, err := os.ReadFile(src)
	if err != nil {
		return "", nil, fmt.Errorf("read staged .vmx: %w", err)
	}
	fi, err := os.Stat(src)
	if err != nil {
		return "", nil, fmt.Errorf("read staged .vmx: %w", err)
	}
	conf, err := esxi.ParseVMX(string(b))
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", filepath.Base(src), err)
	}
	set := map[string]string{}
	var notes []string
	for _, d := range conf.Disks() {
		if fn, ok := newFile[strings.ToLower(d.Device)]; ok {
			set[d.Device+".fileName"] = fn
			continue
		}
		set[d.Device+".present"] = "FALSE"
		notes = append(notes, fmt.Sprintf("disk %s (%s) is not in the replica: disabled in the replica's .vmx", d.Device, d.FileName))
	}
	// Config files kept elsewhere (an absolute path) are beside the .vmx in the replica.
	have := map[string]bool{}
	for _, f := range others {
		have[f.Name] = true
	}
	for _, k := range []string{"nvram", "extendedConfigFile"} {
		if v := conf.Value(k); strings.Contains(v, "/") && have[filepath.Base(v)] {
			set[k] = filepath.Base(v)
		}
	}
	// The swap file's derived path belongs to the running VM; the host that runs the copy makes
	// its own.
	drop := func(k string) bool { return k == "sched.swap.derivedname" }
	out := filepath.Join(dir, filepath.Base(src))
	if err := os.WriteFile(out, []byte(esxi.EditVMX(string(b), set, drop)), fi.Mode().Perm()|0o600); err != nil {
		return "", nil, fmt.Errorf("stage .vmx: %w", err)
	}
	return out, notes, nil
}

// removeStage deletes a folder of staged replica files.
func removeStage(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove staged replica files %s: %w", dir, err)
	}
	return nil
}
