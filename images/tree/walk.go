package tree

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"sort"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/snapferry/snapferry/images/repo"
)

// dirState is a directory whose tree blob is not written yet. pending counts what it waits
// for: the walker while it lists and schedules the entries, each file being read, and each
// subdirectory not finished. Whoever brings it to zero (walker or worker) saves the tree and
// releases the parent, so completion climbs the tree without a goroutine per directory.
type dirState struct {
	path    string
	nodes   []repo.Node // fixed once the walker has listed the directory; workers fill in elements
	pending atomic.Int32
	parent  *dirState
	idx     int    // this directory's node in parent.nodes
	dev     uint64 // st_dev of the directory, for OneFileSystem
	// prev and prevID are this directory's tree in the parent snapshot, when there is one: an
	// unchanged directory reuses its id instead of encoding, hashing and looking up the same
	// bytes again (most of a nothing-changed backup).
	prev   *repo.Tree
	prevID *repo.ID
}

// fileJob is a regular file to read, or (file != nil) one chunk of a large file to store.
type fileJob struct {
	dir  *dirState
	idx  int
	path string
	size int64

	file  *fileState
	index int
	buf   []byte
}

func (a *archiver) node(d *dirState, idx int) *repo.Node { return &d.nodes[idx] }

// walkDir lists d (the selected children only when sel is not nil), schedules its files,
// walks its subdirectories and releases the walker's hold on d.
func (a *archiver) walkDir(ctx context.Context, d *dirState, sel *selection, old *repo.Tree) error {
	d.prev = old
	var err error
	if sel != nil {
		d.nodes, err = a.lstatSelected(d.path, sel)
		if err != nil {
			return err
		}
	} else if d.nodes, err = a.readDir(d.path); err != nil {
		a.fail(d.path, err)
		if d.parent != nil {
			a.node(d.parent, d.idx).Error = err.Error()
		}
	}
	if a.exclude != nil {
		d.nodes = slices.DeleteFunc(d.nodes, func(n repo.Node) bool { return a.exclude(path.Join(d.path, n.Name), &n) })
	}
	prefetched := a.prefetchChildren(ctx, old)
	for i := range d.nodes {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		n := &d.nodes[i]
		p := path.Join(d.path, n.Name)
		prev := lookup(old, n.Name)
		var childSel *selection
		if sel != nil {
			if childSel = sel.children[n.Name]; childSel.all {
				childSel = nil
			} else if n.Type != repo.NodeDir {
				err := fmt.Errorf("is a %s, not a directory: cannot back up paths below it", n.Type)
				n.Error = err.Error()
				a.fail(p, err)
				continue
			}
		}
		switch n.Type {
		case repo.NodeFile:
			if err := a.scheduleFile(ctx, d, i, p, prev); err != nil {
				return err
			}
		case repo.NodeDir:
			if a.oneFS && sel == nil && n.DeviceID != d.dev {
				a.progress.File(1) // a mount point: kept, but not entered
				continue
			}
			child := &dirState{path: p, parent: d, idx: i, dev: n.DeviceID}
			child.pending.Store(1)
			d.pending.Add(1)
			var prevTree *repo.Tree
			if f := prefetched.take(n.Name); f != nil && prev != nil && prev.Type == repo.NodeDir && prev.Subtree != nil {
				if prevTree, _ = f.wait(ctx); prevTree != nil {
					child.prevID = prev.Subtree
				}
			}
			if err := a.walkDir(ctx, child, childSel, prevTree); err != nil {
				return err
			}
		default:
			a.progress.File(1)
		}
	}
	return a.release(ctx, d)
}

// scheduleFile reuses the parent snapshot's content for an unchanged file, or queues the file
// for reading: small ones for any worker, larger ones for the chunker.
func (a *archiver) scheduleFile(ctx context.Context, d *dirState, i int, p string, prev *repo.Node) error {
	n := &d.nodes[i]
	a.bytesTotal.Add(int64(n.Size))
	if unchanged(prev, n) && a.haveBlobs(prev.Content) {
		n.Content = prev.Content
		a.filesUnchanged.Add(1)
		a.progress.File(1)
		return nil
	}
	if prev == nil {
		a.filesNew.Add(1)
	} else {
		a.filesChanged.Add(1)
	}
	if n.Size == 0 {
		a.progress.File(1)
		return nil // nothing to read: an empty file needs no open
	}
	d.pending.Add(1)
	j := fileJob{dir: d, idx: i, path: p, size: int64(n.Size)}
	ch := a.jobs
	if j.size > int64(a.chunking.Min) {
		ch = a.large
	}
	select {
	case ch <- j:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// unchanged reports whether cur can reuse prev's content: same type, size, mtime and inode,
// and prev was read completely.
func unchanged(prev, cur *repo.Node) bool {
	return prev != nil && prev.Type == repo.NodeFile && prev.Error == "" &&
		prev.Size == cur.Size && prev.Inode == cur.Inode && prev.ModTime.Equal(cur.ModTime) &&
		(prev.Size == 0 || len(prev.Content) > 0)
}

// haveBlobs guards against reusing ids the repository lost (a damaged or pruned parent).
func (a *archiver) haveBlobs(ids []repo.ID) bool {
	for _, id := range ids {
		if !a.bs.HasBlob(repo.DataBlob, id) {
			return false
		}
	}
	return true
}

// release drops one hold on d; the last one saves d's tree and releases its parent.
func (a *archiver) release(ctx context.Context, d *dirState) error {
	for d != nil && d.pending.Add(-1) == 0 {
		id, err := a.saveDirTree(ctx, d)
		if err != nil {
			return err
		}
		a.progress.File(1)
		if d.parent == nil {
			a.mu.Lock()
			a.root = &id
			a.mu.Unlock()
			return nil
		}
		a.node(d.parent, d.idx).Subtree = &id
		d = d.parent
	}
	return nil
}

// saveDirTree stores d's tree, or returns the parent snapshot's id for it when nothing in the
// directory changed and the repository still has that tree.
func (a *archiver) saveDirTree(ctx context.Context, d *dirState) (repo.ID, error) {
	t := repo.Tree{Nodes: d.nodes}
	t.Sort()
	if d.prevID != nil && d.prev != nil && sameNodes(t.Nodes, d.prev.Nodes) && a.bs.HasBlob(repo.TreeBlob, *d.prevID) {
		a.treesReused.Add(1)
		return *d.prevID, nil
	}
	data, err := t.Marshal()
	if err != nil {
		return repo.ID{}, fmt.Errorf("encode tree of %s: %w", d.path, err)
	}
	id, err := a.save(ctx, repo.TreeBlob, data)
	if err != nil {
		return repo.ID{}, fmt.Errorf("save tree of %s: %w", d.path, err)
	}
	return id, nil
}

// loadTree loads a tree of the parent snapshot. A parent that cannot be read only costs
// speed (everything below is read again), so errors give nil.
func (a *archiver) loadTree(ctx context.Context, id repo.ID) *repo.Tree {
	data, err := a.bs.LoadBlob(ctx, repo.TreeBlob, id, nil)
	return decodeParentTree(data, err)
}

// decodeParentTree decodes a loaded tree of the parent snapshot; nil when it could not be
// loaded or decoded.
func decodeParentTree(data []byte, err error) *repo.Tree {
	if err != nil {
		return nil
	}
	t, err := repo.UnmarshalTree(data)
	if err != nil {
		return nil
	}
	return t
}

// lookup finds name in a tree whose nodes are sorted by name, as Tree.Marshal stores them.
func lookup(t *repo.Tree, name string) *repo.Node {
	if t == nil {
		return nil
	}
	i := sort.Search(len(t.Nodes), func(i int) bool { return t.Nodes[i].Name >= name })
	if i < len(t.Nodes) && t.Nodes[i].Name == name {
		return &t.Nodes[i]
	}
	return nil
}

// readDir lists a directory and lstats every entry relative to the open directory, which
// spares the kernel a full path walk per entry. Entries that vanish or fail are recorded and
// left out.
func (a *archiver) readDir(dir string) ([]repo.Node, error) {
	fd, err := openRead(dir, unix.O_DIRECTORY)
	if err != nil {
		return nil, fmt.Errorf("open directory: %w", err)
	}
	f := os.NewFile(uintptr(fd), dir)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("read directory: %w", err)
	}
	sort.Strings(names)
	nodes := make([]repo.Node, 0, len(names))
	var linkBuf []byte
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if !errors.Is(err, unix.ENOENT) { // vanished since the listing: not an error
				a.fail(path.Join(dir, name), fmt.Errorf("lstat: %w", err))
			}
			continue
		}
		n := nodeFromStat(name, &st)
		if n.Type == repo.NodeSymlink {
			if n.LinkTarget, linkBuf, err = readlinkat(fd, name, linkBuf); err != nil {
				n.Error = err.Error()
				a.fail(path.Join(dir, name), err)
			}
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// lstatSelected builds the nodes of the chosen children of dir. A chosen path that cannot be
// stat'ed ends the backup: the caller asked for something that is not there.
func (a *archiver) lstatSelected(dir string, sel *selection) ([]repo.Node, error) {
	names := make([]string, 0, len(sel.children))
	for name := range sel.children {
		names = append(names, name)
	}
	sort.Strings(names)
	nodes := make([]repo.Node, 0, len(names))
	var linkBuf []byte
	for _, name := range names {
		p := path.Join(dir, name)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return nil, fmt.Errorf("lstat %s: %w", p, err)
		}
		n := nodeFromStat(name, &st)
		if n.Type == repo.NodeSymlink {
			var err error
			if n.LinkTarget, linkBuf, err = readlinkat(unix.AT_FDCWD, p, linkBuf); err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// readlinkat reads a symlink's target, growing buf until it fits.
func readlinkat(dirfd int, name string, buf []byte) (string, []byte, error) {
	if len(buf) == 0 {
		buf = make([]byte, 256)
	}
	for {
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", buf, fmt.Errorf("readlink: %w", err)
		}
		if n < len(buf) {
			return string(buf[:n]), buf, nil
		}
		buf = make([]byte, 2*len(buf))
	}
}
