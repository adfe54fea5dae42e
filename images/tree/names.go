package tree

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/snapferry/snapferry/images/repo"
)

// ErrUnsafeTree marks a snapshot tree that restore and list refuse outright (see checkNames).
var ErrUnsafeTree = errors.New("damaged or crafted snapshot")

// checkNames rejects a tree whose entry names could make a restore write outside its target
// or into an entry made earlier in the same directory: names must be plain, non-empty, not
// "." or "..", free of "/" and NUL, and unique. Snapshots are data from another host; a
// crafted one must not be able to reach /etc through "../" or a symlink of the same name.
func checkNames(dir string, t *repo.Tree) error {
	seen := make(map[string]struct{}, len(t.Nodes))
	for i := range t.Nodes {
		name := t.Nodes[i].Name
		if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
			return fmt.Errorf("snapshot tree %s: entry name %q is not a plain file name, refusing it: %w", dir, name, ErrUnsafeTree)
		}
		if _, dup := seen[name]; dup {
			return fmt.Errorf("snapshot tree %s: entry %q appears twice, refusing it: %w", dir, name, ErrUnsafeTree)
		}
		seen[name] = struct{}{}
	}
	return nil
}

// checkNotCycle refuses a subtree that is one of the trees above it: a crafted snapshot could
// otherwise make list and restore recurse forever. (The same tree in unrelated places is
// normal: equal directories deduplicate.)
func checkNotCycle(dir string, id repo.ID, ancestors []repo.ID) error {
	for _, a := range ancestors {
		if a == id {
			return fmt.Errorf("snapshot tree %s: directory contains itself (tree %s), refusing it: %w", dir, id.Short(), ErrUnsafeTree)
		}
	}
	return nil
}

// readTree loads, decodes and checks the tree of directory dir.
func readTree(ctx context.Context, bs repo.BlobStore, dir string, id repo.ID) (*repo.Tree, error) {
	data, err := bs.LoadBlob(ctx, repo.TreeBlob, id, nil)
	return decodeTree(dir, id, data, err)
}

// decodeTree is readTree after the load: data is tree id's blob, or err the error loading it.
func decodeTree(dir string, id repo.ID, data []byte, err error) (*repo.Tree, error) {
	if err != nil {
		return nil, fmt.Errorf("load tree %s of %s: %w", id.Short(), dir, err)
	}
	t, err := repo.UnmarshalTree(data)
	if err != nil {
		return nil, fmt.Errorf("tree %s of %s: %w", id.Short(), dir, err)
	}
	if err := checkNames(dir, t); err != nil {
		return nil, err
	}
	return t, nil
}
