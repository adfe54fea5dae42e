package vmdk

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
)

// ErrExtentOutside marks a descriptor whose extent names a file outside the descriptor's folder.
var ErrExtentOutside = errors.New("extent outside the VM's folder")

// ExtentPath resolves an extent's file name the way ESXi does (relative names are relative to
// the descriptor's folder) and confines it to that folder: the VM's folder on its datastore. A
// descriptor is data a guest's administrator (or anyone who can write the datastore) controls,
// and snapferry reads extents as root, so an extent that leads elsewhere ("../../etc/shadow",
// "/etc/shadow", a symlink to either) is refused with ErrExtentOutside, before it is opened.
//
// Symlinks are resolved in both paths before comparing, so an absolute extent through another
// name of the same folder (/vmfs/volumes/datastore1 is a link to /vmfs/volumes/<uuid>) is
// accepted. The returned path is the resolved one, so the file opened is the file checked. An
// extent that does not exist is checked by its folder and returned as named: opening it then
// fails with the usual "no such file".
func ExtentPath(descriptorPath string, e Extent) (string, error) {
	descDir, err := filepath.Abs(filepath.Dir(descriptorPath))
	if err != nil {
		return "", fmt.Errorf("vmdk descriptor %s: %w", descriptorPath, err)
	}
	name := filepath.FromSlash(e.File)
	p := name
	if !filepath.IsAbs(p) {
		p = filepath.Join(descDir, p)
	}
	dir := descDir
	if r, err := filepath.EvalSymlinks(descDir); err == nil {
		dir = r
	}
	resolved, err := resolveExisting(p)
	if err != nil {
		return "", fmt.Errorf("vmdk descriptor %s: extent %q: %w", descriptorPath, e.File, err)
	}
	if !within(dir, resolved) {
		return "", fmt.Errorf("vmdk descriptor %s: extent %q leads to %s, outside the VM's folder %s: refused (%w); a descriptor may only name files in its own folder",
			descriptorPath, e.File, resolved, dir, ErrExtentOutside)
	}
	return resolved, nil
}

// resolveExisting resolves the symlinks of p; when p does not exist, those of its longest
// existing parent, with the rest appended (cleaned, so ".." cannot hide in it).
func resolveExisting(p string) (string, error) {
	r, err := filepath.EvalSymlinks(p)
	if err == nil {
		return r, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	parent := filepath.Dir(p)
	if parent == p {
		return p, nil
	}
	rp, err := resolveExisting(parent)
	if err != nil {
		return "", err
	}
	return filepath.Join(rp, filepath.Base(p)), nil
}

// within reports whether p is dir or below it; both are absolute and clean.
func within(dir, p string) bool {
	if p == dir {
		return true
	}
	return strings.HasPrefix(p, strings.TrimSuffix(dir, string(filepath.Separator))+string(filepath.Separator))
}
