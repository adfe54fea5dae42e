package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/vmdk"
)

// readDescriptorPair reads a VMDK descriptor and resolves its flat extent next to it.
func readDescriptorPair(path string) (desc, flat string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", fmt.Errorf("read descriptor %s: %w", path, err)
	}
	d, err := vmdk.Parse(b)
	if err != nil {
		return "", "", fmt.Errorf("descriptor %s: %w", path, err)
	}
	e, err := d.FlatExtent()
	if err != nil {
		return "", "", fmt.Errorf("descriptor %s: %w", path, err)
	}
	flat = e.File
	if !filepath.IsAbs(flat) {
		flat = filepath.Join(filepath.Dir(path), flat)
	}
	return string(b), flat, nil
}

// flatNameFor is the flat extent name for a restored descriptor "x.vmdk": "x-flat.vmdk".
func flatNameFor(descName string) string {
	return strings.TrimSuffix(descName, ".vmdk") + "-flat.vmdk"
}

// writeDescriptorFor writes the descriptor of a restored disk, pointing at its new flat file
// with a fresh content id (it is a new standalone base disk).
func writeDescriptorFor(d repo.Disk, dst, flat string, overwrite bool) error {
	if err := refuseExisting(dst, overwrite); err != nil {
		return err
	}
	p, err := vmdk.Parse([]byte(d.Descriptor))
	if err != nil {
		return fmt.Errorf("descriptor of %s in snapshot: %w", d.Name, err)
	}
	out, err := p.ForRestore(flat, rand.Uint32())
	if err != nil {
		return fmt.Errorf("descriptor of %s: %w", d.Name, err)
	}
	if err := os.WriteFile(dst, out, 0o600); err != nil {
		return fmt.Errorf("write descriptor %s: %w", dst, err)
	}
	return nil
}
