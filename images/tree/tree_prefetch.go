package tree

import (
	"context"

	"github.com/snapferry/snapferry/images/repo"
)

// prefetchLoaders bounds the goroutines decoding parent-snapshot trees ahead of the walker.
const prefetchLoaders = 3

// treeFuture is a parent-snapshot tree being loaded in the background.
type treeFuture struct {
	done chan struct{}
	t    *repo.Tree
}

// wait returns the loaded tree (nil when it could not be read: only speed is lost).
func (f *treeFuture) wait(ctx context.Context) *repo.Tree {
	select {
	case <-f.done:
		return f.t
	case <-ctx.Done():
		return nil
	}
}

// prefetchChildren starts loading the subtrees of old's directories, so the walker finds them
// decoded when it gets there. In a backup where little changed, decoding the previous snapshot's
// trees is most of the work, and the walker alone would do it one directory at a time.
func (a *archiver) prefetchChildren(ctx context.Context, old *repo.Tree) map[string]*treeFuture {
	if old == nil {
		return nil
	}
	var futs map[string]*treeFuture
	for i := range old.Nodes {
		n := &old.Nodes[i]
		if n.Type != repo.NodeDir || n.Subtree == nil {
			continue
		}
		if futs == nil {
			futs = make(map[string]*treeFuture)
		}
		f := &treeFuture{done: make(chan struct{})}
		futs[n.Name] = f
		id := *n.Subtree
		go func() {
			defer close(f.done)
			select {
			case a.treeLoaders <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-a.treeLoaders }()
			f.t = a.loadTree(ctx, id)
		}()
	}
	return futs
}
