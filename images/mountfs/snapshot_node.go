//go:build linux

package mountfs

import (
	"context"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/snapferry/snapferry/images/repo"
)

// partsSuffix names the folder of a disk's partitions beside the disk's file.
const partsSuffix = ".parts"

// snapshotNode is one snapshot: its file tree's top level, its disks and their .parts folders.
type snapshotNode struct {
	fs.Inode
	m  *mount
	si repo.SnapshotInfo

	once sync.Once
	top  *treeNode // nil without a file tree
}

func (n *snapshotNode) tree() *treeNode {
	n.once.Do(func() {
		if n.si.Snapshot.Tree != nil {
			n.top = &treeNode{m: n.m, id: *n.si.Snapshot.Tree}
		}
	})
	return n.top
}

func (n *snapshotNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.m.dirAttr(&out.Attr, n.si.Snapshot.Time)
	return 0
}

func (n *snapshotNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	var es []fuse.DirEntry
	for _, d := range n.si.Snapshot.Disks {
		es = append(es, fuse.DirEntry{Name: d.Name, Mode: syscall.S_IFREG}, fuse.DirEntry{Name: d.Name + partsSuffix, Mode: syscall.S_IFDIR})
	}
	if t := n.tree(); t != nil {
		more, errno := t.entries(ctx)
		if errno != 0 {
			return nil, errno
		}
		es = append(es, more...)
	}
	return fs.NewListDirStream(es), 0
}

func (n *snapshotNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	for _, d := range n.si.Snapshot.Disks {
		switch name {
		case d.Name:
			dn := &diskNode{m: n.m, d: d}
			dn.attr(&out.Attr)
			return n.NewInode(ctx, dn, fs.StableAttr{Mode: syscall.S_IFREG}), 0
		case d.Name + partsSuffix:
			n.m.dirAttr(&out.Attr, n.si.Snapshot.Time)
			return n.NewInode(ctx, &partsNode{m: n.m, d: d}, fs.StableAttr{Mode: syscall.S_IFDIR}), 0
		}
	}
	if t := n.tree(); t != nil {
		return t.lookupChild(ctx, &n.Inode, name, out)
	}
	return nil, syscall.ENOENT
}
