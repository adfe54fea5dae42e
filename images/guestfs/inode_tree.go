package guestfs

import (
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// inodeTree is what ext and XFS have in common: folders list names with inode numbers, and an
// inode becomes an Entry. Path lookup, Lstat and ReadDir are written once for both.
type inodeTree[I any] interface {
	inodeOf(num uint64) (I, error)
	rootNum() uint64
	isDir(I) bool
	entries(dir I, fn func(name string, num uint64) bool) error
	entry(name string, in I) (Entry, error)
	folderCache() *dirCache
}

// lookupPath walks name from the root, never following symlinks; each folder on the way is read
// once and its names cached.
func lookupPath[I any](t inodeTree[I], name string) (I, error) {
	in, err := t.inodeOf(t.rootNum())
	if err != nil || name == "." {
		return in, err
	}
	var zero I
	walked := ""
	for _, el := range strings.Split(name, "/") {
		if !t.isDir(in) {
			return zero, &fs.PathError{Op: "lstat", Path: name, Err: fmt.Errorf("%s is not a directory", walked)}
		}
		names, ok := t.folderCache().get(walked)
		if !ok {
			names = map[string]uint64{}
			if err := t.entries(in, func(n string, num uint64) bool { names[n] = num; return true }); err != nil {
				return zero, fmt.Errorf("%s: %w", path.Join(walked, "."), err)
			}
			t.folderCache().put(walked, names)
		}
		found := names[el]
		if found == 0 {
			return zero, &fs.PathError{Op: "lstat", Path: name, Err: fs.ErrNotExist}
		}
		walked = path.Join(walked, el)
		if in, err = t.inodeOf(found); err != nil {
			return zero, fmt.Errorf("%s: %w", walked, err)
		}
	}
	return in, nil
}

func lstatPath[I any](t inodeTree[I], name string) (Entry, error) {
	in, err := lookupPath(t, name)
	if err != nil {
		return Entry{}, err
	}
	return t.entry(path.Base(name), in)
}

func readDirPath[I any](t inodeTree[I], name string) ([]Entry, error) {
	dir, err := lookupPath(t, name)
	if err != nil {
		return nil, err
	}
	if !t.isDir(dir) {
		return nil, fmt.Errorf("%s: not a directory", name)
	}
	var out []Entry
	var ierr error
	err = t.entries(dir, func(n string, num uint64) bool {
		in, err := t.inodeOf(num)
		if err == nil {
			var e Entry
			if e, err = t.entry(n, in); err == nil {
				out = append(out, e)
				return true
			}
		}
		ierr = fmt.Errorf("%s: %w", path.Join(name, n), err)
		return false
	})
	if err == nil {
		err = ierr
	}
	return out, err
}
