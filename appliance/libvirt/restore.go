package libvirt

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/images/disk"
	"github.com/snapferry/snapferry/images/overwrite"
	"github.com/snapferry/snapferry/images/progress"
	"github.com/snapferry/snapferry/images/repo"
)

// RestoreOptions tune a domain restore. DiskDir and LockDir are required.
type RestoreOptions struct {
	Name      string // the restored domain's name; default the backed-up domain's
	DiskDir   string // folder the disk files are written into (with Pool: the domain XML only)
	Pool      string // libvirt storage pool the disks are created in as volumes (instead of DiskDir)
	Format    string // qcow2 (default) or raw
	Register  bool   // define the domain in libvirt
	Overwrite bool   // replace a shut-off domain of that name and disk files of those names
	PowerOn   bool   // start the restored domain (implies Register)
	LockDir   string
	LockWait  time.Duration
	Progress  progress.Reporter
	Log       func(msg string)
	// QemuImg converts restored raw disks to qcow2; default "qemu-img" from PATH.
	QemuImg string
}

// RestoreResult says what a restore created.
type RestoreResult struct {
	Name    string
	UUID    string   // when defined
	Disks   []string // the restored disk files (pool volumes' paths), in the snapshot's order
	XML     string   // the restored domain's definition (also written into DiskDir when given)
	Defined bool
}

func (o *RestoreOptions) logf(format string, args ...any) {
	if o.Log != nil {
		o.Log(fmt.Sprintf(format, args...))
	}
}

// IsLibvirtSnapshot tells whether a repository snapshot is a libvirt domain backup.
func IsLibvirtSnapshot(sn *repo.Snapshot) bool {
	return sn.Kind == repo.SnapshotVM && sn.VM != nil && sn.VM.Hypervisor == "libvirt"
}

// Restore writes a domain snapshot's disks into DiskDir (qcow2 or raw, named
// <name>-<target>.<format>), or as volumes of those names into the storage pool Pool, and its
// domain XML into DiskDir, rewritten for the new name (a
// domain restored under another name gets a new UUID and new MAC addresses, so it can run
// beside the original), and defines it when asked. An existing domain of that name is replaced
// only with Overwrite and never while it runs; existing disk files only with Overwrite. Disks
// are written under temporary names and renamed when complete.
func (d *Driver) Restore(ctx context.Context, bs repo.BlobStore, sn *repo.Snapshot, o RestoreOptions) (RestoreResult, error) {
	var res RestoreResult
	if !IsLibvirtSnapshot(sn) {
		return res, fmt.Errorf("snapshot of %s is not a libvirt domain backup (restore ESXi VMs with --datastore)", sn.Source)
	}
	if o.DiskDir == "" && o.Pool == "" {
		return res, errors.New("restore a domain: --disk-dir (the folder its disk files go into) or --pool (a libvirt storage pool) is required")
	}
	if o.Pool != "" && o.DiskDir == "" && !o.Register {
		return res, errors.New("restore a domain into --pool: give --register to define it, or --disk-dir for its domain XML (else nothing would use the volumes)")
	}
	switch o.Format {
	case "":
		o.Format = "qcow2"
	case "qcow2", "raw":
	default:
		return res, fmt.Errorf("--format=%q: want qcow2 or raw", o.Format)
	}
	if o.QemuImg == "" {
		o.QemuImg = "qemu-img"
	}
	if o.PowerOn {
		o.Register = true
	}
	name := o.Name
	if name == "" {
		name = sn.VM.Name
	}
	res.Name = name
	lock, err := appliance.LockVM(ctx, o.LockDir, "name:"+name, o.LockWait)
	if err != nil {
		return res, err
	}
	defer lock.Unlock()
	doc, err := loadDomainXML(ctx, bs, sn)
	if err != nil {
		return res, err
	}
	existing, exists, err := d.checkTarget(name, o.Overwrite, o.Register)
	if err != nil {
		return res, err
	}
	var pool *storagePool
	if o.Pool != "" {
		if pool, err = d.openPool(o.Pool); err != nil {
			return res, err
		}
	}
	if o.DiskDir != "" {
		if err := os.MkdirAll(o.DiskDir, 0o755); err != nil {
			return res, fmt.Errorf("disk folder: %w", err)
		}
	}
	paths := map[string]string{}
	for _, dk := range sn.Disks {
		file := diskFileName(name, dk.Name, o.Format)
		p := filepath.Join(o.DiskDir, file)
		if pool != nil {
			if p, err = pool.check(d, file, o.Overwrite); err != nil {
				return res, err
			}
		} else if _, err := os.Lstat(p); err == nil && !o.Overwrite {
			return res, kept(p, fmt.Sprintf("disk file %s exists: give --overwrite to replace it, or another --name or --disk-dir", p))
		}
		paths[dk.Name] = p
		res.Disks = append(res.Disks, p)
	}
	xmlPath := ""
	if o.DiskDir != "" {
		xmlPath = filepath.Join(o.DiskDir, name+".xml")
		if _, err := os.Lstat(xmlPath); err == nil && !o.Overwrite {
			return res, kept(xmlPath, fmt.Sprintf("%s exists: give --overwrite to replace it, or another --name or --disk-dir", xmlPath))
		}
	}
	keep := name == sn.VM.Name
	res.XML, err = rewriteForRestore(doc, name, paths, o.Format, keep)
	if err != nil {
		return res, err
	}
	for i, dk := range sn.Disks {
		if pool != nil {
			o.logf("restoring disk %s to volume %s in storage pool %s", dk.Name, filepath.Base(paths[dk.Name]), pool.name)
			p, err := d.restoreVolume(ctx, bs, dk, pool, filepath.Base(paths[dk.Name]), o)
			if err != nil {
				return res, fmt.Errorf("disk %s: %w", dk.Name, err)
			}
			paths[dk.Name], res.Disks[i] = p, p
			continue
		}
		o.logf("restoring disk %s to %s", dk.Name, paths[dk.Name])
		if err := restoreDisk(ctx, bs, dk, paths[dk.Name], o); err != nil {
			return res, fmt.Errorf("disk %s: %w", dk.Name, err)
		}
	}
	if pool != nil {
		// The XML names the paths the pool gave the volumes.
		if res.XML, err = rewriteForRestore(doc, name, paths, o.Format, keep); err != nil {
			return res, err
		}
	}
	if xmlPath != "" {
		if err := writeFileAtomic(xmlPath, []byte(res.XML)); err != nil {
			return res, err
		}
	}
	if !o.Register {
		return res, nil
	}
	if exists {
		o.logf("replacing the shut-off domain %s", name)
		if err := d.l.DomainUndefineFlags(existing, golibvirt.DomainUndefineCheckpointsMetadata|golibvirt.DomainUndefineSnapshotsMetadata|golibvirt.DomainUndefineManagedSave); err != nil {
			return res, fmt.Errorf("undefine the domain %s being replaced: %w", name, err)
		}
	}
	dom, err := d.l.DomainDefineXMLFlags(res.XML, 0)
	if err != nil {
		return res, fmt.Errorf("define the restored domain %s: %w (its XML is in %s)", name, err, cmp.Or(xmlPath, "the --json output"))
	}
	res.Defined, res.UUID = true, formatUUID(dom.UUID)
	if o.PowerOn {
		if err := d.l.DomainCreate(dom); err != nil {
			return res, fmt.Errorf("start the restored domain %s: %w", name, err)
		}
	}
	return res, nil
}

// checkTarget looks up a domain of the restore's name: none is fine; a running one is never
// replaced; a shut-off one only with overwrite.
func (d *Driver) checkTarget(name string, overwrite, register bool) (golibvirt.Domain, bool, error) {
	dom, err := d.l.DomainLookupByName(name)
	if err != nil {
		if isCode(err, golibvirt.ErrNoDomain) {
			return dom, false, nil
		}
		return dom, false, fmt.Errorf("look up domain %s: %w", name, err)
	}
	st, _, err := d.l.DomainGetState(dom, 0)
	if err != nil {
		return dom, true, fmt.Errorf("state of domain %s: %w", name, err)
	}
	if golibvirt.DomainState(st) != golibvirt.DomainShutoff {
		return dom, true, fmt.Errorf("domain %s exists and is running: a running domain is never replaced; shut it down first, or restore under another --name: %w", name, appliance.ErrInvalidPowerState)
	}
	if !overwrite {
		return dom, true, kept("domain "+name, fmt.Sprintf("domain %s exists: give --overwrite to replace it (it is shut off), or restore under another --name", name))
	}
	return dom, true, nil
}

// restoreDisk writes one disk to path through a temporary file: raw straight from the
// repository (sparse), qcow2 converted from that by qemu-img (zeros stay unallocated).
func restoreDisk(ctx context.Context, bs repo.BlobStore, dk repo.Disk, path string, o RestoreOptions) error {
	tmpRaw := path + ".snapferry-tmp"
	defer os.Remove(tmpRaw)
	if err := disk.Restore(ctx, bs, dk, tmpRaw, disk.RestoreOptions{Progress: o.Progress}); err != nil {
		return err
	}
	if o.Format == "raw" {
		return os.Rename(tmpRaw, path)
	}
	tmpQcow := path + ".snapferry-tmp.qcow2"
	defer os.Remove(tmpQcow)
	cmd := exec.CommandContext(ctx, o.QemuImg, "convert", "-q", "-f", "raw", "-O", "qcow2", tmpRaw, tmpQcow)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("qemu-img convert to qcow2: %v: %s", err, out)
	}
	return os.Rename(tmpQcow, path)
}

// kept is a restore's refusal to replace what exists without --overwrite: the thing is kept and
// the restore ends with exit 3 (partial), as every snapferry restore that keeps an existing
// entry (images/overwrite); appliance.ErrAlreadyExists for callers that ask.
func kept(what, msg string) error {
	return fmt.Errorf("%w: %w", &overwrite.NotReplaced{Paths: []string{what}, Msg: msg}, appliance.ErrAlreadyExists)
}

// writeFileAtomic writes a small file under a temporary name and renames it into place.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".snapferry-tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
