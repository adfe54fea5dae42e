package guestfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"
)

// Entry describes one name in a guest file system.
type Entry struct {
	Name    string
	Mode    fs.FileMode // type bits (dir, symlink, ...) and permissions
	Size    int64
	ModTime time.Time
	Target  string // a symlink's target
	Inode   uint64 // 0 when the file system has no inode numbers (FAT, exFAT)
	Nlink   uint32 // 0 when unknown
}

// FS is a read-only view of a guest file system. Names are slash-separated and relative to the
// root ("." is the root), as io/fs takes them; a symlink is never followed.
type FS interface {
	Type() string
	Lstat(name string) (Entry, error)
	ReadDir(name string) ([]Entry, error)
	Open(name string) (File, error)
}

// File is an open regular file of a guest file system.
type File interface {
	io.ReaderAt
	Size() int64
	Close() error
}

// opener returns the reader for file-system type t, or nil when snapferry does not read it.
func opener(t string) func(r io.ReaderAt, size int64) (FS, error) {
	switch t {
	case "ext2", "ext3", "ext4":
		return openExt
	case "vfat":
		return openFAT
	case "ntfs":
		return openNTFS
	case "xfs":
		return openXFS
	case "exfat":
		return openExFAT
	}
	return nil
}

// OpenFS opens the file system of v. Every call on the returned FS runs under the guard
// (guard.go): one call at a time (the libraries share a read position) and a library panic on
// a damaged image becomes an error naming the volume.
func (v *Volume) OpenFS() (FS, error) {
	if v.Problem != "" {
		return nil, fmt.Errorf("%s: %s", v.Name, v.Problem)
	}
	open := opener(v.FSType)
	if open == nil {
		what := v.FSType
		if what == "" {
			what = "an unknown file system"
		}
		if v.FSType == "lvm2" {
			return nil, fmt.Errorf("%s is an LVM physical volume: name a logical volume below it (%s)", v.Name, lvNames(v))
		}
		return nil, fmt.Errorf("%s holds %s, which is %w; restore the whole disk instead", v.Name, what, ErrUnsupported)
	}
	var f FS
	err := guard(v.Name, func() error {
		var err error
		f, err = open(v.r, v.Size)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s (%s): %w", v.Name, v.FSType, err)
	}
	return &guarded{fs: f, vol: v.Name}, nil
}

// cleanName turns a user's or a caller's path into io/fs form: "" and "/" are ".", no leading
// slash, no "..", no empty elements.
func cleanName(name string) (string, error) {
	name = strings.Trim(path.Clean("/"+name), "/")
	if name == "" {
		return ".", nil
	}
	if !fs.ValidPath(name) {
		return "", fmt.Errorf("%q: %w", name, fs.ErrInvalid)
	}
	return name, nil
}

// ErrNotRegular is returned by Open for a directory, symlink or device.
var ErrNotRegular = errors.New("not a regular file")
