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

	"github.com/snapferry/snapferry/images/disk"
	"github.com/snapferry/snapferry/images/repo"
)

// symlinkNode is a symlink of a tree or of a guest file system.
type symlinkNode struct {
	fs.Inode
	m      *mount
	target string
	attr   fuse.Attr
}

func (n *symlinkNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Attr = n.attr
	return 0
}

func (n *symlinkNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	return []byte(n.target), 0
}

// treeFileNode is a file of a snapshot's tree. Its chunks' offsets come from the index (no
// load); a read loads the chunks it touches and keeps the last one.
type treeFileNode struct {
	fs.Inode
	m    *mount
	node *repo.Node

	mu     sync.Mutex
	starts []int64 // offset of each chunk; built on first read
	last   int
	data   []byte
}

func (n *treeFileNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	nodeAttr(n.m, n.node, &out.Attr)
	return 0
}

func (n *treeFileNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
		return nil, 0, syscall.EROFS
	}
	return nil, fuse.FOPEN_KEEP_CACHE, 0
}

func (n *treeFileNode) Read(ctx context.Context, f fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n.mu.Lock()
	defer n.mu.Unlock()
	c, cancel := n.m.opCtx(ctx)
	defer cancel()
	if n.starts == nil {
		var at int64
		n.starts = make([]int64, len(n.node.Content))
		for i, id := range n.node.Content {
			l, ok := n.m.r.BlobLen(repo.DataBlob, id)
			if !ok {
				n.starts = nil
				return nil, n.m.errno("read "+n.node.Name, fmt.Errorf("chunk %d (%s) is not in the index", i, id.Short()))
			}
			n.starts[i] = at
			at += l
		}
		n.last = -1
	}
	size := int64(n.node.Size)
	end := min(off+int64(len(dest)), size)
	got := 0
	for at := off; at < end; {
		i := sort.Search(len(n.starts), func(i int) bool { return n.starts[i] > at }) - 1
		if i < 0 {
			break
		}
		if i != n.last {
			b, err := n.m.r.LoadBlob(c, repo.DataBlob, n.node.Content[i], n.data[:0])
			if err != nil {
				n.last = -1
				return nil, n.m.errno("read "+n.node.Name, err)
			}
			n.data, n.last = b, i
		}
		in := at - n.starts[i]
		if in >= int64(len(n.data)) {
			break
		}
		k := copy(dest[got:end-off], n.data[in:])
		got += k
		at += int64(k)
	}
	return fuse.ReadResultData(dest[:got]), 0
}

// diskNode is a backed-up disk as a read-only file of its full size.
type diskNode struct {
	fs.Inode
	m *mount
	d repo.Disk

	once sync.Once
	rd   *disk.Reader
	err  error
}

func (n *diskNode) attr(a *fuse.Attr) {
	a.Mode = syscall.S_IFREG | 0o444
	a.Size = uint64(n.d.Size)
	a.Blocks = uint64(n.d.Allocated+511) / 512
	n.m.common(a, time.Time{})
}

func (n *diskNode) reader() (*disk.Reader, error) {
	n.once.Do(func() { n.rd, n.err = disk.NewReader(n.m.ctx, n.m.r, n.d, disk.ReaderOptions{CacheBlocks: 16}) })
	return n.rd, n.err
}

func (n *diskNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.attr(&out.Attr)
	return 0
}

func (n *diskNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
		return nil, 0, syscall.EROFS
	}
	return nil, fuse.FOPEN_KEEP_CACHE, 0
}

func (n *diskNode) Read(ctx context.Context, f fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	rd, err := n.reader()
	if err != nil {
		return nil, n.m.errno("disk "+n.d.Name, err)
	}
	c, cancel := n.m.opCtx(ctx)
	defer cancel()
	k, err := rd.ReadAtContext(c, dest, off)
	if err != nil && k < len(dest) && off+int64(k) < n.d.Size {
		return nil, n.m.errno("read disk "+n.d.Name, err)
	}
	return fuse.ReadResultData(dest[:k]), 0
}
