package vmdk

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/snapferry/snapferry/images/disk"
	"github.com/snapferry/snapferry/images/overwrite"
	"github.com/snapferry/snapferry/images/repo"
)

// ReadDescriptor reads and parses the descriptor file at path.
func ReadDescriptor(path string) (*Descriptor, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read vmdk descriptor: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxDescriptorSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read vmdk descriptor %s: %w", path, err)
	}
	if len(b) > MaxDescriptorSize {
		return nil, nil, fmt.Errorf("vmdk descriptor %s: larger than %d bytes, so a data extent rather than a descriptor: %w", path, MaxDescriptorSize, ErrNotDescriptor)
	}
	d, err := Parse(b)
	if err != nil {
		return nil, nil, fmt.Errorf("vmdk descriptor %s: %w", path, err)
	}
	return d, b, nil
}

// Backup backs up the disk described by the descriptor at descriptorPath: its flat extent as
// blocks through images/disk, the descriptor text in Disk.Descriptor, Disk.Format "vmdk".
// The extent must be as large as the descriptor says; a mismatch means a copy in progress or
// a wrong pairing and is refused. opts.Name defaults to the descriptor's base name.
func Backup(ctx context.Context, bs repo.BlobStore, descriptorPath string, opts disk.Options) (repo.Disk, repo.Stats, error) {
	d, text, err := ReadDescriptor(descriptorPath)
	if err != nil {
		return repo.Disk{}, repo.Stats{}, err
	}
	e, err := d.FlatExtent()
	if err != nil {
		return repo.Disk{}, repo.Stats{}, fmt.Errorf("back up %s: %w", descriptorPath, err)
	}
	flat, err := ExtentPath(descriptorPath, e)
	if err != nil {
		return repo.Disk{}, repo.Stats{}, fmt.Errorf("back up %s: %w", descriptorPath, err)
	}
	f, err := os.Open(flat)
	if err != nil {
		return repo.Disk{}, repo.Stats{}, fmt.Errorf("back up %s: open its flat extent: %w", descriptorPath, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return repo.Disk{}, repo.Stats{}, fmt.Errorf("back up %s: %w", descriptorPath, err)
	}
	if fi.Mode().IsRegular() && fi.Size() != e.Size() {
		return repo.Disk{}, repo.Stats{}, fmt.Errorf("back up %s: flat extent %s holds %d bytes but the descriptor says %d (%d sectors)",
			descriptorPath, flat, fi.Size(), e.Size(), e.Sectors)
	}
	if opts.Name == "" {
		opts.Name = filepath.Base(descriptorPath)
	}
	opts.Format = "vmdk"
	opts.Descriptor = string(text)
	return disk.BackupFile(ctx, bs, f, opts)
}

// FlatName is the flat extent name ESXi gives the disk x.vmdk: x-flat.vmdk.
func FlatName(descriptorPath string) string {
	return strings.TrimSuffix(filepath.Base(descriptorPath), ".vmdk") + "-flat.vmdk"
}

// Restore writes a Disk backed up by Backup as descriptorPath plus its flat extent beside it
// (FlatName), the flat extent sparse. The descriptor is rewritten for the new name with a new
// CID and no parent (see ForRestore) and is written last, atomically, so a descriptor on disk
// always has its complete extent.
func Restore(ctx context.Context, bs repo.BlobStore, dk repo.Disk, descriptorPath string, opts disk.RestoreOptions) error {
	if dk.Format != "vmdk" || dk.Descriptor == "" {
		return fmt.Errorf("restore %s: disk %q has format %q and no VMDK descriptor; restore it as a raw image", descriptorPath, dk.Name, dk.Format)
	}
	d, err := Parse([]byte(dk.Descriptor))
	if err != nil {
		return fmt.Errorf("restore %s: descriptor in snapshot: %w", descriptorPath, err)
	}
	if d.Size() != dk.Size {
		return fmt.Errorf("restore %s: descriptor says %d bytes, the disk holds %d: snapshot is corrupt", descriptorPath, d.Size(), dk.Size)
	}
	flat := FlatName(descriptorPath)
	text, err := d.ForRestore(flat, newCID())
	if err != nil {
		return fmt.Errorf("restore %s: %w", descriptorPath, err)
	}
	flatPath := filepath.Join(filepath.Dir(descriptorPath), flat)
	// The pair follows package overwrite's rule as one: an existing descriptor whose flat
	// extent holds the disk is an earlier restore (descriptors differ in CID only) and is left
	// alone; otherwise both are kept unless opts.Overwrite.
	if _, err := os.Lstat(descriptorPath); err == nil && !opts.Overwrite {
		same, err := disk.Same(ctx, bs, dk, flatPath)
		if err != nil {
			return fmt.Errorf("restore %s: compare with the existing %s: %w", descriptorPath, flatPath, err)
		}
		if same {
			return nil
		}
		kept := []string{descriptorPath}
		if _, err := os.Lstat(flatPath); err == nil {
			kept = append(kept, flatPath)
		}
		return &overwrite.NotReplaced{Paths: kept}
	}
	if err := disk.Restore(ctx, bs, dk, flatPath, opts); err != nil {
		return fmt.Errorf("restore %s: %w", descriptorPath, err)
	}
	if err := writeAtomic(descriptorPath, text); err != nil {
		return fmt.Errorf("restore %s: %w", descriptorPath, err)
	}
	return nil
}

// newCID picks a random content id; ffffffff and fffffffe are avoided since ESXi uses them as
// "no parent" markers.
func newCID() uint32 {
	var b [4]byte
	for {
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
		if c := binary.LittleEndian.Uint32(b[:]); c < 0xfffffffe {
			return c
		}
	}
}

// writeAtomic writes data to a temp file beside path, syncs it and renames it over path.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write descriptor: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write descriptor: %w", err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write descriptor: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write descriptor: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write descriptor: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write descriptor: %w", err)
	}
	return nil
}
