//go:build linux

package mountfs

import (
	"context"
	"errors"
	"io"
	iofs "io/fs"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/snapferry/snapferry/images/disk"
	"github.com/snapferry/snapferry/images/guestfs"
	"github.com/snapferry/snapferry/images/repo"
)

// partsNode is DISK.parts: the disk's partitions (p1, p2, ...; p0 for a bare file system).
type partsNode struct {
	fs.Inode
	m *mount
	d repo.Disk

	once sync.Once
	gd   *guestfs.Disk
	err  error
}

func (n *partsNode) guest() (*guestfs.Disk, error) {
	n.once.Do(func() {
		rd, err := disk.NewReader(n.m.ctx, n.m.r, n.d, disk.ReaderOptions{})
		if err != nil {
			n.err = err
			return
		}
		n.gd, n.err = guestfs.Open(&timedReader{m: n.m, rd: rd}, n.d.Size)
	})
	return n.gd, n.err
}

func (n *partsNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.m.dirAttr(&out.Attr, time.Time{})
	return 0
}

func (n *partsNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	gd, err := n.guest()
	if err != nil {
		return nil, n.m.errno("partitions of "+n.d.Name, err)
	}
	var es []fuse.DirEntry
	for _, v := range gd.Volumes {
		es = append(es, fuse.DirEntry{Name: v.Name, Mode: syscall.S_IFDIR})
	}
	return fs.NewListDirStream(es), 0
}

func (n *partsNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	gd, err := n.guest()
	if err != nil {
		return nil, n.m.errno("partitions of "+n.d.Name, err)
	}
	for _, v := range gd.Volumes {
		if v.Name == name {
			n.m.dirAttr(&out.Attr, time.Time{})
			return n.NewInode(ctx, newVolumeNode(n.m, v), fs.StableAttr{Mode: syscall.S_IFDIR}), 0
		}
	}
	return nil, syscall.ENOENT
}

// timedReader gives every read the file systems make of the disk its own time limit, so a
// store that stops answering fails that read (EIO) instead of holding the FUSE request.
type timedReader struct {
	m  *mount
	rd *disk.Reader
}

func (t *timedReader) ReadAt(p []byte, off int64) (int, error) {
	ctx, cancel := context.WithTimeout(t.m.ctx, opTimeout)
	defer cancel()
	return t.rd.ReadAtContext(ctx, p, off)
}

// volumeNode is a partition or logical volume: its file system's root, or for an LVM physical
// volume its volume groups' logical volumes as VG/LV folders.
type volumeNode struct {
	guestDirNode
	v *guestfs.Volume
}

func newVolumeNode(m *mount, v *guestfs.Volume) *volumeNode {
	return &volumeNode{guestDirNode: guestDirNode{m: m, path: ".", vol: v}, v: v}
}

func (n *volumeNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	if n.v.FSType != "lvm2" {
		return n.guestDirNode.Readdir(ctx)
	}
	seen := map[string]bool{}
	var es []fuse.DirEntry
	for _, lv := range n.v.LVs {
		vg, _, _ := strings.Cut(lv.Name, "/")
		if !seen[vg] {
			seen[vg] = true
			es = append(es, fuse.DirEntry{Name: vg, Mode: syscall.S_IFDIR})
		}
	}
	return fs.NewListDirStream(es), 0
}

func (n *volumeNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if n.v.FSType != "lvm2" {
		return n.guestDirNode.Lookup(ctx, name, out)
	}
	for _, lv := range n.v.LVs {
		if vg, _, _ := strings.Cut(lv.Name, "/"); vg == name {
			n.m.dirAttr(&out.Attr, time.Time{})
			return n.NewInode(ctx, &vgNode{m: n.m, vg: name, pv: n.v}, fs.StableAttr{Mode: syscall.S_IFDIR}), 0
		}
	}
	return nil, syscall.ENOENT
}

// vgNode lists one volume group's logical volumes.
type vgNode struct {
	fs.Inode
	m  *mount
	vg string
	pv *guestfs.Volume
}

func (n *vgNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.m.dirAttr(&out.Attr, time.Time{})
	return 0
}

func (n *vgNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	var es []fuse.DirEntry
	for _, lv := range n.pv.LVs {
		if vg, name, _ := strings.Cut(lv.Name, "/"); vg == n.vg {
			es = append(es, fuse.DirEntry{Name: name, Mode: syscall.S_IFDIR})
		}
	}
	return fs.NewListDirStream(es), 0
}

func (n *vgNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	for _, lv := range n.pv.LVs {
		if lv.Name == n.vg+"/"+name {
			n.m.dirAttr(&out.Attr, time.Time{})
			return n.NewInode(ctx, newVolumeNode(n.m, lv), fs.StableAttr{Mode: syscall.S_IFDIR}), 0
		}
	}
	return nil, syscall.ENOENT
}

// guestDirNode is a folder inside a guest file system. The file system is opened on first use
// (one per volume node, shared by the nodes below it).
type guestDirNode struct {
	fs.Inode
	m     *mount
	path  string
	entry guestfs.Entry
	vol   *guestfs.Volume // set on the volume's root; children get gfs
	gfs   *lazyFS
}

// lazyFS opens a volume's file system once.
type lazyFS struct {
	once sync.Once
	v    *guestfs.Volume
	f    guestfs.FS
	err  error
}

func (l *lazyFS) get() (guestfs.FS, error) {
	l.once.Do(func() { l.f, l.err = l.v.OpenFS() })
	return l.f, l.err
}

func (n *guestDirNode) fsys() (guestfs.FS, error) {
	if n.gfs == nil {
		n.gfs = &lazyFS{v: n.vol}
	}
	return n.gfs.get()
}

func (n *guestDirNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.m.dirAttr(&out.Attr, n.entry.ModTime)
	if n.entry.Mode != 0 {
		out.Attr.Mode = syscall.S_IFDIR | uint32(n.entry.Mode.Perm())&^0o222
	}
	return 0
}

func (n *guestDirNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	f, err := n.fsys()
	if err != nil {
		return nil, n.m.errno(n.path, err)
	}
	es, err := f.ReadDir(n.path)
	if err != nil {
		return nil, n.m.errno(n.path, err)
	}
	out := make([]fuse.DirEntry, 0, len(es))
	for _, e := range es {
		out = append(out, fuse.DirEntry{Name: e.Name, Mode: guestMode(e.Mode) &^ 0o7777})
	}
	return fs.NewListDirStream(out), 0
}

func guestMode(m iofs.FileMode) uint32 {
	perm := uint32(m.Perm()) &^ 0o222
	switch {
	case m.IsDir():
		return syscall.S_IFDIR | perm
	case m&iofs.ModeSymlink != 0:
		return syscall.S_IFLNK | 0o777
	case m.IsRegular():
		return syscall.S_IFREG | perm
	}
	return syscall.S_IFREG | perm // devices and fifos show as empty files: nothing to serve
}

func (n *guestDirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	f, err := n.fsys()
	if err != nil {
		return nil, n.m.errno(n.path, err)
	}
	p := path.Join(n.path, name)
	e, err := f.Lstat(p)
	if err != nil {
		return nil, n.m.lookupErrno(p, err)
	}
	a := &out.Attr
	a.Mode = guestMode(e.Mode)
	a.Size = uint64(max(e.Size, 0))
	if e.Mode&iofs.ModeSymlink != 0 {
		a.Size = uint64(len(e.Target))
	} else if !e.Mode.IsRegular() {
		a.Size = 0
	}
	a.Blocks = (a.Size + 511) / 512
	n.m.common(a, e.ModTime)
	if e.Nlink > 1 {
		a.Nlink = e.Nlink
	}
	switch {
	case e.Mode.IsDir():
		return n.NewInode(ctx, &guestDirNode{m: n.m, path: p, entry: e, gfs: n.gfs}, fs.StableAttr{Mode: syscall.S_IFDIR}), 0
	case e.Mode&iofs.ModeSymlink != 0:
		return n.NewInode(ctx, &symlinkNode{m: n.m, target: e.Target, attr: *a}, fs.StableAttr{Mode: syscall.S_IFLNK}), 0
	}
	return n.NewInode(ctx, &guestFileNode{m: n.m, path: p, attr: *a, gfs: n.gfs, regular: e.Mode.IsRegular()}, fs.StableAttr{Mode: syscall.S_IFREG}), 0
}

// guestFileNode is a file inside a guest file system.
type guestFileNode struct {
	fs.Inode
	m       *mount
	path    string
	attr    fuse.Attr
	gfs     *lazyFS
	regular bool
}

func (n *guestFileNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Attr = n.attr
	return 0
}

type guestHandle struct{ f guestfs.File }

func (n *guestFileNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
		return nil, 0, syscall.EROFS
	}
	if !n.regular {
		return &guestHandle{}, 0, 0
	}
	f, err := n.gfs.get()
	if err != nil {
		return nil, 0, n.m.errno(n.path, err)
	}
	gf, err := f.Open(n.path)
	if err != nil {
		return nil, 0, n.m.errno(n.path, err)
	}
	return &guestHandle{f: gf}, fuse.FOPEN_KEEP_CACHE, 0
}

func (n *guestFileNode) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h, ok := fh.(*guestHandle)
	if !ok || h.f == nil {
		return fuse.ReadResultData(nil), 0
	}
	k, err := h.f.ReadAt(dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, n.m.errno("read "+n.path, err)
	}
	return fuse.ReadResultData(dest[:k]), 0
}

func (n *guestFileNode) Release(ctx context.Context, fh fs.FileHandle) syscall.Errno {
	if h, ok := fh.(*guestHandle); ok && h.f != nil {
		h.f.Close()
	}
	return 0
}
