package guestfs

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// foldNode is a node of a file system whose names match without regard to case, as Windows
// matches them (FAT, exFAT): both readers walk and list with the same code.
type foldNode interface {
	comparable
	nodeName() string
	isDir() bool
	entry() Entry
}

// lookupFold walks name from root, listing each directory with list. A name that matches
// exactly wins; otherwise the first that matches without regard to case.
func lookupFold[N foldNode](root N, name string, list func(N) ([]N, error)) (N, error) {
	var none N
	n := root
	if name == "." {
		return n, nil
	}
	for _, el := range strings.Split(name, "/") {
		if !n.isDir() {
			return none, &fs.PathError{Op: "lstat", Path: name, Err: errors.New("not a directory")}
		}
		kids, err := list(n)
		if err != nil {
			return none, err
		}
		hit, found := none, false
		for _, k := range kids {
			if k.nodeName() == el || !found && strings.EqualFold(k.nodeName(), el) {
				hit, found = k, true
			}
		}
		if !found {
			return none, &fs.PathError{Op: "lstat", Path: name, Err: fs.ErrNotExist}
		}
		n = hit
	}
	return n, nil
}

// lstatFold is Lstat over lookup: the entry of the node name leads to, named as asked.
func lstatFold[N foldNode](name string, lookup func(string) (N, error)) (Entry, error) {
	n, err := lookup(name)
	if err != nil {
		return Entry{}, err
	}
	e := n.entry()
	e.Name = path.Base(name)
	return e, nil
}

// readDirFold is ReadDir over lookup and list; a listing that fails names the folder.
func readDirFold[N foldNode](name string, lookup func(string) (N, error), list func(N) ([]N, error)) ([]Entry, error) {
	n, err := lookup(name)
	if err != nil {
		return nil, err
	}
	if !n.isDir() {
		return nil, fmt.Errorf("%s: not a directory", name)
	}
	kids, err := list(n)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	out := make([]Entry, len(kids))
	for i, k := range kids {
		out[i] = k.entry()
	}
	return out, nil
}

// openFold is Open over lookup: the file's node, opened by open; a folder is refused.
func openFold[N foldNode](name string, lookup func(string) (N, error), open func(N) File) (File, error) {
	n, err := lookup(name)
	if err != nil {
		return nil, err
	}
	if n.isDir() {
		return nil, fmt.Errorf("%s: %w", name, ErrNotRegular)
	}
	return open(n), nil
}
