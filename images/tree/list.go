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
	l := lister{bs: bs, fn: fn, sem: make(chan struct{}, prefetchLoaders)}
	return l.tree(ctx, "/", root, nil, nil)
}

// lister is one List call. Subtrees are loaded a few ahead of the walk (subtreeLoads): on
// ssh:// each tree is a round trip.
type lister struct {
	bs  repo.BlobStore
	fn  func(string, *repo.Node) error
	sem chan struct{}
}

// tree lists tree id at dir; fut, when not nil, is that tree already being loaded.
func (l *lister) tree(ctx context.Context, dir string, id repo.ID, ancestors []repo.ID, fut *treeFuture) error {
	if err := checkNotCycle(dir, id, ancestors); err != nil {
		return err
	}
	var t *repo.Tree
	var err error
	if fut != nil {
		t, err = fut.wait(ctx)
	} else {
		t, err = readTree(ctx, l.bs, dir, id)
	}
	if err != nil {
		return err
	}
	loads := prefetchSubtrees(ctx, l.sem, l.bs, t, nil, func(n *repo.Node, data []byte, err error) (*repo.Tree, error) {
		return decodeTree(path.Join(dir, n.Name), *n.Subtree, data, err)
	})
	for i := range t.Nodes {
		n := &t.Nodes[i]
		p := path.Join(dir, n.Name)
		err := l.fn(p, n)
		if errors.Is(err, fs.SkipDir) {
			continue
		}
		if err != nil {
			return err
		}
		if n.Type == repo.NodeDir && n.Subtree != nil {
			if err := l.tree(ctx, p, *n.Subtree, append(ancestors, id), loads.take(n.Name)); err != nil {
				return err
			}
		}
	}
	return nil
}
