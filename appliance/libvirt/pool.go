package libvirt

import (
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/images/disk"
	"github.com/snapferry/snapferry/images/overwrite"
	"github.com/snapferry/snapferry/images/repo"
)

// storagePool is a libvirt storage pool a restore writes its disks into as volumes. Only pools
// whose volumes are files in one folder (dir, fs, netfs) are supported: a volume is created
// under a temporary name, written, and renamed in that folder when complete, so nothing under
// the final name is ever half-written (libvirt has no volume rename; a refresh of the pool
// shows the renamed file as the volume).
type storagePool struct {
	name string
	pool golibvirt.StoragePool
	dir  string // the pool's target path
}

// openPool looks the pool up and checks that it is active and of a supported type.
func (d *Driver) openPool(name string) (*storagePool, error) {
	p, err := d.l.StoragePoolLookupByName(name)
	if err != nil {
		if isCode(err, golibvirt.ErrNoStoragePool) {
			return nil, fmt.Errorf("no libvirt storage pool named %s (virsh pool-list --all shows them): %w", name, appliance.ErrNotFound)
		}
		return nil, fmt.Errorf("look up storage pool %s: %w", name, err)
	}
	if active, err := d.l.StoragePoolIsActive(p); err != nil {
		return nil, fmt.Errorf("storage pool %s: %w", name, err)
	} else if active == 0 {
		return nil, fmt.Errorf("storage pool %s is not active: start it first (virsh pool-start %s)", name, name)
	}
	x, err := d.l.StoragePoolGetXMLDesc(p, 0)
	if err != nil {
		return nil, fmt.Errorf("storage pool %s: %w", name, err)
	}
	doc, err := parseXML(x)
	if err != nil {
		return nil, fmt.Errorf("storage pool %s: %w", name, err)
	}
	switch typ := doc.attr("type"); typ {
	case "dir", "fs", "netfs":
	default:
		return nil, fmt.Errorf("storage pool %s is of type %q: restore writes into pools whose volumes are files (dir, fs, netfs); use --disk-dir for others", name, typ)
	}
	dir := strings.TrimSpace(doc.child("target").child("path").text())
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("storage pool %s has no target path", name)
	}
	return &storagePool{name: name, pool: p, dir: dir}, nil
}

// check refuses a volume name that exists in the pool (or as a file in its folder that the pool
// has not listed yet) unless overwrite, and returns the path the volume will have.
func (sp *storagePool) check(d *Driver, vol string, overwriteOK bool) (string, error) {
	path := filepath.Join(sp.dir, vol)
	_, err := d.l.StorageVolLookupByName(sp.pool, vol)
	exists := err == nil
	if _, serr := os.Lstat(path); serr == nil {
		exists = true
	}
	if exists && !overwriteOK {
		return "", kept(path, fmt.Sprintf("volume %s exists in storage pool %s: give --overwrite to replace it, or another --name", vol, sp.name))
	}
	return path, nil
}

// restoreVolume writes one disk into the pool as volume vol (raw straight from the repository,
// sparse; qcow2 converted by qemu-img into the volume libvirt created) and returns its path.
func (d *Driver) restoreVolume(ctx context.Context, bs repo.BlobStore, dk repo.Disk, sp *storagePool, vol string, o RestoreOptions) (_ string, err error) {
	partial := overwrite.PartialName(vol)
	if old, err := d.l.StorageVolLookupByName(sp.pool, partial); err == nil {
		_ = d.l.StorageVolDelete(old, 0) // a leftover of a killed run
	}
	v, err := d.l.StorageVolCreateXML(sp.pool, volumeXML(partial, dk.Size, o.Format), 0)
	if err != nil {
		return "", fmt.Errorf("create volume %s in storage pool %s: %w", partial, sp.name, err)
	}
	renamed := false
	defer func() {
		if !renamed {
			_ = d.l.StorageVolDelete(v, 0)
		}
	}()
	tmp, err := d.l.StorageVolGetPath(v)
	if err != nil {
		return "", fmt.Errorf("path of volume %s: %w", partial, err)
	}
	if filepath.Dir(tmp) != filepath.Clean(sp.dir) {
		return "", fmt.Errorf("volume %s of storage pool %s is at %s, outside the pool's folder %s", partial, sp.name, tmp, sp.dir)
	}
	if o.Format == "raw" {
		err = restoreInto(ctx, bs, dk, tmp, o)
	} else {
		err = convertInto(ctx, bs, dk, tmp, o)
	}
	if err != nil {
		return "", err
	}
	final := filepath.Join(sp.dir, vol)
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("volume %s: %w", vol, err)
	}
	renamed = true
	if err := d.l.StoragePoolRefresh(sp.pool, 0); err != nil {
		return "", fmt.Errorf("refresh storage pool %s after writing %s: %w", sp.name, vol, err)
	}
	return final, nil
}

// restoreInto writes a disk raw into the existing file path (sparse: holes stay holes).
func restoreInto(ctx context.Context, bs repo.BlobStore, dk repo.Disk, path string, o RestoreOptions) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = disk.RestoreFile(ctx, bs, dk, f, disk.RestoreOptions{Progress: o.Progress})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// convertInto writes a disk into the existing qcow2 image path: raw into a scratch file beside
// it first, then qemu-img convert -n, which keeps the image libvirt created (its owner and
// mode) and leaves zeros unallocated.
func convertInto(ctx context.Context, bs repo.BlobStore, dk repo.Disk, path string, o RestoreOptions) error {
	raw := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".raw")
	defer os.Remove(raw)
	if err := disk.Restore(ctx, bs, dk, raw, disk.RestoreOptions{Progress: o.Progress, Overwrite: true}); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, o.QemuImg, "convert", "-q", "-n", "-f", "raw", "-O", "qcow2", raw, path)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("qemu-img convert into the qcow2 volume: %v: %s", err, out)
	}
	return nil
}

// volumeXML describes a new volume of size bytes, allocated as it is written.
func volumeXML(name string, size int64, format string) string {
	var b strings.Builder
	b.WriteString("<volume><name>")
	_ = xml.EscapeText(&b, []byte(name))
	fmt.Fprintf(&b, "</name><capacity unit='bytes'>%d</capacity><allocation unit='bytes'>0</allocation><target><format type='%s'/></target></volume>", size, format)
	return b.String()
}
