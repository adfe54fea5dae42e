package tree

import (
	"context"

	"github.com/snapferry/snapferry/images/repo"
)

// prefetchLoaders bounds the goroutines loading trees ahead of a walker (per backup or restore).
const prefetchLoaders = 3

// treeFuture is a tree being loaded in the background.
type treeFuture struct {
	done chan struct{}
	t    *repo.Tree
	err  error
}

// wait returns the loaded tree, or the error loading it.
func (f *treeFuture) wait(ctx context.Context) (*repo.Tree, error) {
	select {
	case <-f.done:
		return f.t, f.err
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// prefetchSubtrees starts loading the subtrees of t's directories that want accepts, at most
// cap(sem) at a time, so the walker finds them decoded when it gets there. A walker alone
// loads one directory's tree at a time: a round trip each on ssh:// or sftp://, and in a
// backup where little changed, decoding the parent's trees is most of the work. Futures are
// keyed by node name.
func prefetchSubtrees(ctx context.Context, sem chan struct{}, t *repo.Tree, want func(*repo.Node) bool,
	load func(context.Context, *repo.Node) (*repo.Tree, error)) map[string]*treeFuture {
	if t == nil {
		return nil
	}
	var futs map[string]*treeFuture
	for i := range t.Nodes {
		n := &t.Nodes[i]
		if n.Type != repo.NodeDir || n.Subtree == nil || !want(n) {
			continue
		}
		if futs == nil {
			futs = make(map[string]*treeFuture)
		}
		f := &treeFuture{done: make(chan struct{})}
		futs[n.Name] = f
		go func() {
			defer close(f.done)
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				f.err = context.Cause(ctx)
				return
			}
			defer func() { <-sem }()
			f.t, f.err = load(ctx, n)
		}()
	}
	return futs
}

// prefetchChildren prefetches the parent snapshot's subtrees for a backup. A parent tree that
// cannot be read only costs speed (everything below is read again): its future holds nil.
func (a *archiver) prefetchChildren(ctx context.Context, old *repo.Tree) map[string]*treeFuture {
	all := func(*repo.Node) bool { return true }
	return prefetchSubtrees(ctx, a.treeLoaders, old, all, func(ctx context.Context, n *repo.Node) (*repo.Tree, error) {
		return a.loadTree(ctx, *n.Subtree), nil
	})
}
