//go:build linux

package mountfs

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/snapferry/snapferry/images/repo"
)

// treeNode is a folder of a snapshot's file tree; its tree blob is loaded on first use.
type treeNode struct {
	fs.Inode
	m    *mount
	id   repo.ID
	node *repo.Node // nil for a snapshot's top level

	mu    sync.Mutex
	tree  *repo.Tree
	index map[string]int
}

func (n *treeNode) load(ctx context.Context) (*repo.Tree, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.tree != nil {
		return n.tree, nil
	}
	c, cancel := n.m.opCtx(ctx)
	defer cancel()
	b, err := n.m.r.LoadBlob(c, repo.TreeBlob, n.id, nil)
	if err != nil {
		return nil, err
	}
	t, err := repo.UnmarshalTree(b)
	if err != nil {
		return nil, err
	}
	n.index = make(map[string]int, len(t.Nodes))
	for i, nd := range t.Nodes {
		n.index[nd.Name] = i
	}
	n.tree = t
	return t, nil
}

func nodeMode(nd *repo.Node) uint32 {
	switch nd.Type {
	case "dir":
		return syscall.S_IFDIR
	case "symlink":
		return syscall.S_IFLNK
	case "file":
		return syscall.S_IFREG
	}
	return 0
}

func (n *treeNode) entries(ctx context.Context) ([]fuse.DirEntry, syscall.Errno) {
	t, err := n.load(ctx)
	if err != nil {
		return nil, n.m.errno("load tree", err)
	}
	var es []fuse.DirEntry
	for i := range t.Nodes {
		if m := nodeMode(&t.Nodes[i]); m != 0 {
			es = append(es, fuse.DirEntry{Name: t.Nodes[i].Name, Mode: m})
		}
	}
	sort.Slice(es, func(i, j int) bool { return es[i].Name < es[j].Name })
	return es, 0
}

func (n *treeNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	nodeAttr(n.m, n.node, &out.Attr)
	return 0
}

func (n *treeNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	es, errno := n.entries(ctx)
	if errno != 0 {
		return nil, errno
	}
	return fs.NewListDirStream(es), 0
}

func (n *treeNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return n.lookupChild(ctx, &n.Inode, name, out)
}

// lookupChild finds name in this tree and makes its inode under parent (the tree folder itself,
// or the snapshot folder for a snapshot's top level).
func (n *treeNode) lookupChild(ctx context.Context, parent *fs.Inode, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	t, err := n.load(ctx)
	if err != nil {
		return nil, n.m.errno("load tree", err)
	}
	n.mu.Lock()
	i, ok := n.index[name]
	n.mu.Unlock()
	if !ok {
		return nil, syscall.ENOENT
	}
	nd := &t.Nodes[i]
	nodeAttr(n.m, nd, &out.Attr)
	switch nd.Type {
	case "dir":
		if nd.Subtree == nil {
			return nil, n.m.errno("tree "+name, fmt.Errorf("folder %q has no subtree: snapshot is corrupt", name))
		}
		return parent.NewInode(ctx, &treeNode{m: n.m, id: *nd.Subtree, node: nd}, fs.StableAttr{Mode: syscall.S_IFDIR}), 0
	case "symlink":
		return parent.NewInode(ctx, &symlinkNode{m: n.m, target: nd.LinkTarget, attr: out.Attr}, fs.StableAttr{Mode: syscall.S_IFLNK}), 0
	case "file":
		return parent.NewInode(ctx, &treeFileNode{m: n.m, node: nd}, fs.StableAttr{Mode: syscall.S_IFREG}), 0
	}
	return nil, syscall.ENOENT
}

func nodeAttr(m *mount, nd *repo.Node, a *fuse.Attr) {
	if nd == nil {
		m.dirAttr(a, time.Time{})
		return
	}
	a.Mode = nodeMode(nd) | nd.Mode&0o7777&^0o222 // read-only: no write bits
	a.Size = nd.Size
	if nd.Type == "symlink" {
		a.Size = uint64(len(nd.LinkTarget))
	}
	a.Blocks = (a.Size + 511) / 512
	m.common(a, nd.ModTime)
	a.Owner = fuse.Owner{Uid: nd.UID, Gid: nd.GID}
	if nd.Links > 1 {
		a.Nlink = uint32(nd.Links)
	}
}
