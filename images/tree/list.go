package tree

import (
	"context"
	"errors"
	"io/fs"
	"path"

	"github.com/snapferry/snapferry/images/repo"
)

// List walks the tree rooted at root depth-first in name order and calls fn with every
// entry's absolute snapshot path ("/usr/share/doc") and node. Returning fs.SkipDir from fn for
// a directory skips what is below it; any other error stops the walk and is returned. Only one
// directory level per depth is in memory, so listing a huge snapshot streams.
func List(ctx context.Context, bs repo.BlobStore, root repo.ID, fn func(path string, n *repo.Node) error) error {
	return listTree(ctx, bs, "/", root, nil, fn)
}

func listTree(ctx context.Context, bs repo.BlobStore, dir string, id repo.ID, ancestors []repo.ID, fn func(string, *repo.Node) error) error {
	if err := checkNotCycle(dir, id, ancestors); err != nil {
		return err
	}
	t, err := readTree(ctx, bs, dir, id)
	if err != nil {
		return err
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		p := path.Join(dir, n.Name)
		err := fn(p, n)
		if errors.Is(err, fs.SkipDir) {
			continue
		}
		if err != nil {
			return err
		}
		if n.Type == repo.NodeDir && n.Subtree != nil {
			if err := listTree(ctx, bs, p, *n.Subtree, append(ancestors, id), fn); err != nil {
				return err
			}
		}
	}
	return nil
}
