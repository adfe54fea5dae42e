package tree

import (
	"context"
	"fmt"

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
	// prefetchBatch is how many subtrees one loader asks the repository for at once
	// (repo.LoadBlobs): sibling trees written in one backup lie close together in a pack and
	// come in one ranged request, where each cost its own GET on an object store (3 037 for
	// /usr/share). Trees the local cache holds are read from it one by one all the same.
	prefetchBatch = prefetchAhead / 2
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
	ctx    context.Context
	sem    chan struct{}
	bs     repo.BlobStore
	decode func(n *repo.Node, data []byte, err error) (*repo.Tree, error)
	dirs   []*repo.Node // the children to load, in name order
	futs   map[string]*treeFuture
	next   int // dirs[next:] not started
	done   int // dirs[:done] taken or passed by the walker
}

// prefetchSubtrees starts loading the subtrees of t's directories that want accepts (all of
// them when want is nil) from bs, in batches of prefetchBatch: at most cap(sem) batches at a
// time, at most prefetchAhead trees ahead of the walker. decode turns a loaded blob (or the
// error loading it) into the child's tree. nil when t is nil.
func prefetchSubtrees(ctx context.Context, sem chan struct{}, bs repo.BlobStore, t *repo.Tree, want func(*repo.Node) bool,
	decode func(n *repo.Node, data []byte, err error) (*repo.Tree, error)) *subtreeLoads {
	if t == nil {
		return nil
	}
	s := &subtreeLoads{ctx: ctx, sem: sem, bs: bs, decode: decode, futs: map[string]*treeFuture{}}
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
// are dropped, and the next loads start when half the window is used up, so they go in batches.
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
	if s.next-s.done <= prefetchAhead-prefetchBatch {
		s.fill(s.done + prefetchAhead)
	}
	return f
}

// fill starts the loads of dirs up to index upto (exclusive), prefetchBatch to a loader.
// Children the walker has passed already (it skipped more than the window) are not loaded:
// nobody would take their trees, which would stay in futs.
func (s *subtreeLoads) fill(upto int) {
	s.next = max(s.next, s.done)
	for s.next < min(upto, len(s.dirs)) {
		end := min(upto, len(s.dirs), s.next+prefetchBatch)
		nodes := s.dirs[s.next:end]
		futs := make([]*treeFuture, len(nodes))
		for i, n := range nodes {
			futs[i] = &treeFuture{done: make(chan struct{})}
			s.futs[n.Name] = futs[i]
		}
		s.next = end
		go s.load(nodes, futs)
	}
}

// load loads one batch of subtrees and completes their futures, each as soon as it is decoded.
func (s *subtreeLoads) load(nodes []*repo.Node, futs []*treeFuture) {
	finished := make([]bool, len(nodes))
	var err error
	defer func() {
		for i, f := range futs {
			if !finished[i] {
				f.err = err
				close(f.done)
			}
		}
	}()
	select {
	case s.sem <- struct{}{}:
	case <-s.ctx.Done():
		err = context.Cause(s.ctx)
		return
	}
	defer func() { <-s.sem }()
	ids := make([]repo.ID, len(nodes))
	for i, n := range nodes {
		ids[i] = *n.Subtree
	}
	err = repo.LoadBlobs(s.ctx, s.bs, repo.TreeBlob, ids, func(i int, data []byte, err error) error {
		if finished[i] {
			return nil
		}
		futs[i].t, futs[i].err = s.decode(nodes[i], data, err)
		finished[i] = true
		close(futs[i].done)
		return nil
	})
	if err == nil {
		err = fmt.Errorf("load trees: the repository returned no result for some") // never: LoadBlobs answers every position
	}
}

// prefetchChildren prefetches the parent snapshot's subtrees for a backup. A parent tree that
// cannot be read only costs speed (everything below is read again): its future holds nil.
func (a *archiver) prefetchChildren(ctx context.Context, old *repo.Tree) *subtreeLoads {
	return prefetchSubtrees(ctx, a.treeLoaders, a.bs, old, nil, func(_ *repo.Node, data []byte, err error) (*repo.Tree, error) {
		return decodeParentTree(data, err), nil
	})
}
