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
	if err := o.normalize(sn); err != nil {
		return res, err
	}
	res.Name = o.Name
	lock, err := appliance.LockVM(ctx, o.LockDir, "name:"+o.Name, o.LockWait)
	if err != nil {
		return res, err
	}
	defer lock.Unlock()
	pl, err := d.planRestore(ctx, bs, sn, o)
	if err != nil {
		return res, err
	}
	for _, dk := range sn.Disks {
		res.Disks = append(res.Disks, pl.paths[dk.Name])
	}
	// Rewritten before any disk is written, so a domain XML it cannot handle writes nothing.
	if res.XML, err = rewriteForRestore(pl.doc, o.Name, pl.paths, o.Format, pl.keep); err != nil {
		return res, err
	}
	if err := d.writeDisks(ctx, bs, sn, pl, o, &res); err != nil {
		return res, err
	}
	if pl.xmlPath != "" {
		if err := writeFileAtomic(pl.xmlPath, []byte(res.XML)); err != nil {
			return res, err
		}
	}
	if !o.Register {
		return res, nil
	}
	return res, d.defineRestored(pl, o, &res)
}

// normalize checks a restore's options and fills the defaults: format qcow2, the snapshot's
// domain name, qemu-img from PATH; PowerOn implies Register.
func (o *RestoreOptions) normalize(sn *repo.Snapshot) error {
	if !IsLibvirtSnapshot(sn) {
		return fmt.Errorf("snapshot of %s is not a libvirt domain backup (restore ESXi VMs with --datastore)", sn.Source)
	}
	if o.DiskDir == "" && o.Pool == "" {
		return errors.New("restore a domain: --disk-dir (the folder its disk files go into) or --pool (a libvirt storage pool) is required")
	}
	if o.PowerOn {
		o.Register = true
	}
	if o.Pool != "" && o.DiskDir == "" && !o.Register {
		return errors.New("restore a domain into --pool: give --register to define it, or --disk-dir for its domain XML (else nothing would use the volumes)")
	}
	switch o.Format {
	case "":
		o.Format = "qcow2"
	case "qcow2", "raw":
	default:
		return fmt.Errorf("--format=%q: want qcow2 or raw", o.Format)
	}
	o.QemuImg = cmp.Or(o.QemuImg, "qemu-img")
	o.Name = cmp.Or(o.Name, sn.VM.Name)
	return nil
}

// restorePlan is what a restore decided before it writes anything.
type restorePlan struct {
	doc      string // the snapshot's domain XML
	existing golibvirt.Domain
	exists   bool // a shut-off domain of the name is replaced (Overwrite)
	pool     *storagePool
	paths    map[string]string // disk target -> the file or volume path it is written to
	xmlPath  string            // where the domain XML is written; "" with Pool and no DiskDir
	keep     bool              // restored under its own name: UUID and MACs kept
}

// planRestore runs every check of a restore (the domain of the name, the pool, the disk files,
// volumes and XML file that exist) so that a refused restore writes nothing.
func (d *Driver) planRestore(ctx context.Context, bs repo.BlobStore, sn *repo.Snapshot, o RestoreOptions) (*restorePlan, error) {
	pl := &restorePlan{paths: map[string]string{}, keep: o.Name == sn.VM.Name}
	var err error
	if pl.doc, err = loadDomainXML(ctx, bs, sn); err != nil {
		return nil, err
	}
	if pl.existing, pl.exists, err = d.checkTarget(o.Name, o.Overwrite, o.Register); err != nil {
		return nil, err
	}
	if o.Pool != "" {
		if pl.pool, err = d.openPool(o.Pool); err != nil {
			return nil, err
		}
	}
	if o.DiskDir != "" {
		if err := os.MkdirAll(o.DiskDir, 0o755); err != nil {
			return nil, fmt.Errorf("disk folder: %w", err)
		}
	}
	for _, dk := range sn.Disks {
		file := diskFileName(o.Name, dk.Name, o.Format)
		p := filepath.Join(o.DiskDir, file)
		if pl.pool != nil {
			if p, err = pl.pool.check(d, file, o.Overwrite); err != nil {
				return nil, err
			}
		} else if _, err := os.Lstat(p); err == nil && !o.Overwrite {
			return nil, kept(p, fmt.Sprintf("disk file %s exists: give --overwrite to replace it, or another --name or --disk-dir", p))
		}
		pl.paths[dk.Name] = p
	}
	if o.DiskDir != "" {
		pl.xmlPath = filepath.Join(o.DiskDir, o.Name+".xml")
		if _, err := os.Lstat(pl.xmlPath); err == nil && !o.Overwrite {
			return nil, kept(pl.xmlPath, fmt.Sprintf("%s exists: give --overwrite to replace it, or another --name or --disk-dir", pl.xmlPath))
		}
	}
	return pl, nil
}

// writeDisks writes each disk to its file, or as a volume of the pool (then res.Disks and the
// XML name the paths the pool gave the volumes).
func (d *Driver) writeDisks(ctx context.Context, bs repo.BlobStore, sn *repo.Snapshot, pl *restorePlan, o RestoreOptions, res *RestoreResult) error {
	for i, dk := range sn.Disks {
		if pl.pool == nil {
			o.logf("restoring disk %s to %s", dk.Name, pl.paths[dk.Name])
			if err := restoreDisk(ctx, bs, dk, pl.paths[dk.Name], o); err != nil {
				return fmt.Errorf("disk %s: %w", dk.Name, err)
			}
			continue
		}
		vol := filepath.Base(pl.paths[dk.Name])
		o.logf("restoring disk %s to volume %s in storage pool %s", dk.Name, vol, pl.pool.name)
		p, err := d.restoreVolume(ctx, bs, dk, pl.pool, vol, o)
		if err != nil {
			return fmt.Errorf("disk %s: %w", dk.Name, err)
		}
		pl.paths[dk.Name], res.Disks[i] = p, p
	}
	if pl.pool == nil {
		return nil
	}
	var err error
	res.XML, err = rewriteForRestore(pl.doc, o.Name, pl.paths, o.Format, pl.keep)
	return err
}

// defineRestored defines the restored domain (after undefining the shut-off one it replaces)
// and starts it when asked.
func (d *Driver) defineRestored(pl *restorePlan, o RestoreOptions, res *RestoreResult) error {
	if pl.exists {
		o.logf("replacing the shut-off domain %s", o.Name)
		if err := d.l.DomainUndefineFlags(pl.existing, golibvirt.DomainUndefineCheckpointsMetadata|golibvirt.DomainUndefineSnapshotsMetadata|golibvirt.DomainUndefineManagedSave); err != nil {
			return fmt.Errorf("undefine the domain %s being replaced: %w", o.Name, err)
		}
	}
	dom, err := d.l.DomainDefineXMLFlags(res.XML, 0)
	if err != nil {
		return fmt.Errorf("define the restored domain %s: %w (its XML is in %s)", o.Name, err, cmp.Or(pl.xmlPath, "the --json output"))
	}
	res.Defined, res.UUID = true, formatUUID(dom.UUID)
	if o.PowerOn {
		if err := d.l.DomainCreate(dom); err != nil {
			return fmt.Errorf("start the restored domain %s: %w", o.Name, err)
		}
	}
	return nil
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
	// The temp names are the restores' own partial names (images/overwrite): a file left by a
	// killed run is ours to write over, and never taken for something a user made.
	tmpRaw := filepath.Join(filepath.Dir(path), overwrite.PartialName(filepath.Base(path)))
	defer os.Remove(tmpRaw)
	if err := disk.Restore(ctx, bs, dk, tmpRaw, disk.RestoreOptions{Progress: o.Progress, Overwrite: true}); err != nil {
		return err
	}
	if o.Format == "raw" {
		return os.Rename(tmpRaw, path)
	}
	tmpQcow := tmpRaw + ".qcow2"
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
