package tree

import (
	"context"

	"github.com/snapferry/snapferry/images/repo"
)

const (
	// prefetchLoaders bounds the goroutines loading trees ahead of a walker (per backup or
	// restore).
	prefetchLoaders = 3
	// prefetchAhead is how many subtrees of one directory may be loading or loaded ahead of
	// the walker. A directory with 100 000 subdirectories must not cost 100 000 goroutines and
	// decoded trees at once.
	prefetchAhead = 16
)

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

// subtreeLoads loads the subtrees of one directory's children ahead of a walker that visits
// the children in name order, so it finds them decoded when it gets there. A walker alone
// loads one tree at a time: a round trip each on ssh:// or sftp://, and in a backup where
// little changed, decoding the parent snapshot's trees is most of the work.
type subtreeLoads struct {
	ctx  context.Context
	sem  chan struct{}
	load func(context.Context, *repo.Node) (*repo.Tree, error)
	dirs []*repo.Node // the children to load, in name order
	futs map[string]*treeFuture
	next int // dirs[next:] not started
	done int // dirs[:done] taken or passed by the walker
}

// prefetchSubtrees starts loading the subtrees of t's directories that want accepts (all of
// them when want is nil): at most cap(sem) at a time, at most prefetchAhead ahead of the
// walker. nil when t is nil.
func prefetchSubtrees(ctx context.Context, sem chan struct{}, t *repo.Tree, want func(*repo.Node) bool,
	load func(context.Context, *repo.Node) (*repo.Tree, error)) *subtreeLoads {
	if t == nil {
		return nil
	}
	s := &subtreeLoads{ctx: ctx, sem: sem, load: load, futs: map[string]*treeFuture{}}
	for i := range t.Nodes {
		if n := &t.Nodes[i]; n.Type == repo.NodeDir && n.Subtree != nil && (want == nil || want(n)) {
			s.dirs = append(s.dirs, n)
		}
	}
	s.fill(prefetchAhead)
	return s
}

// take returns the load of child name's subtree, or nil when name is none of the children
// (then the walker has nothing to wait for). Children before name that the walker passed by
// are dropped, and the next loads start.
func (s *subtreeLoads) take(name string) *treeFuture {
	if s == nil {
		return nil
	}
	for s.done < len(s.dirs) && s.dirs[s.done].Name < name {
		delete(s.futs, s.dirs[s.done].Name)
		s.done++
	}
	var f *treeFuture
	if s.done < len(s.dirs) && s.dirs[s.done].Name == name {
		s.fill(s.done + 1)
		f = s.futs[name]
		delete(s.futs, name)
		s.done++
	}
	s.fill(s.done + prefetchAhead)
	return f
}

// fill starts the loads of dirs up to index upto (exclusive).
func (s *subtreeLoads) fill(upto int) {
	for ; s.next < min(upto, len(s.dirs)); s.next++ {
		n := s.dirs[s.next]
		f := &treeFuture{done: make(chan struct{})}
		s.futs[n.Name] = f
		go func() {
			defer close(f.done)
			select {
			case s.sem <- struct{}{}:
			case <-s.ctx.Done():
				f.err = context.Cause(s.ctx)
				return
			}
			defer func() { <-s.sem }()
			f.t, f.err = s.load(s.ctx, n)
		}()
	}
}

// prefetchChildren prefetches the parent snapshot's subtrees for a backup. A parent tree that
// cannot be read only costs speed (everything below is read again): its future holds nil.
func (a *archiver) prefetchChildren(ctx context.Context, old *repo.Tree) *subtreeLoads {
	return prefetchSubtrees(ctx, a.treeLoaders, old, nil, func(ctx context.Context, n *repo.Node) (*repo.Tree, error) {
		return a.loadTree(ctx, *n.Subtree), nil
	})
}
