//go:build linux

package mountfs

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/snapferry/snapferry/images/repo"
)

// Options tune a mount.
type Options struct {
	// Logf receives errors that became EIO (default: the standard logger).
	Logf func(format string, args ...any)
	// Debug logs every FUSE request.
	Debug bool
}

// mount is what every node shares.
type mount struct {
	ctx  context.Context
	r    *repo.Repository
	logf func(string, ...any)
	uid  uint32
	gid  uint32
}

// Mount serves r read-only at dir until ctx ends or the file system is unmounted; it returns
// once the kernel has the mount. Call Wait on the server, and Unmount to end it.
func Mount(ctx context.Context, r *repo.Repository, dir string, o Options) (*fuse.Server, error) {
	m := &mount{ctx: ctx, r: r, logf: o.Logf, uid: uint32(syscall.Getuid()), gid: uint32(syscall.Getgid())}
	root := &rootNode{m: m}
	sec := time.Hour // nothing in a repository snapshot changes under the kernel's cache
	srv, err := fs.Mount(dir, root, &fs.Options{
		EntryTimeout: &sec,
		AttrTimeout:  &sec,
		MountOptions: fuse.MountOptions{
			FsName:        "snapferry",
			Name:          "snapferry",
			Debug:         o.Debug,
			Options:       []string{"ro"},
			DisableXAttrs: true,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w (FUSE needs /dev/fuse and fusermount3 or root)", dir, err)
	}
	return srv, nil
}

func (m *mount) dirAttr(a *fuse.Attr, mtime time.Time) {
	a.Mode = syscall.S_IFDIR | 0o555
	m.common(a, mtime)
}

func (m *mount) common(a *fuse.Attr, mtime time.Time) {
	a.Owner = fuse.Owner{Uid: m.uid, Gid: m.gid}
	if !mtime.IsZero() {
		a.SetTimes(nil, &mtime, &mtime)
	}
	a.Nlink = 1
}

// rootNode holds the one folder "snapshots".
type rootNode struct {
	fs.Inode
	m *mount
}

var _ = (fs.NodeLookuper)((*rootNode)(nil))

func (n *rootNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.m.dirAttr(&out.Attr, time.Time{})
	return 0
}

func (n *rootNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	return fs.NewListDirStream([]fuse.DirEntry{{Name: "snapshots", Mode: syscall.S_IFDIR}}), 0
}

func (n *rootNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if name != "snapshots" {
		return nil, syscall.ENOENT
	}
	n.m.dirAttr(&out.Attr, time.Time{})
	return n.NewInode(ctx, &snapshotsNode{m: n.m}, fs.StableAttr{Mode: syscall.S_IFDIR}), 0
}

// snapshotsNode lists the repository's snapshots, read again on each listing so a mount that
// stays up sees new backups.
type snapshotsNode struct {
	fs.Inode
	m *mount

	mu    sync.Mutex
	names map[string]repo.SnapshotInfo
}

func snapshotName(si repo.SnapshotInfo) string {
	return si.Snapshot.Time.UTC().Format("2006-01-02T15:04:05Z") + "_" + si.ID.Short()
}

func (n *snapshotsNode) load(ctx context.Context) (map[string]repo.SnapshotInfo, error) {
	c, cancel := n.m.opCtx(ctx)
	defer cancel()
	list, err := n.m.r.ListSnapshots(c, repo.SnapshotFilter{})
	if err != nil {
		return nil, err
	}
	names := make(map[string]repo.SnapshotInfo, len(list))
	for _, si := range list {
		names[snapshotName(si)] = si
	}
	n.mu.Lock()
	n.names = names
	n.mu.Unlock()
	return names, nil
}

func (n *snapshotsNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.m.dirAttr(&out.Attr, time.Time{})
	return 0
}

func (n *snapshotsNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	names, err := n.load(ctx)
	if err != nil {
		return nil, n.m.errno("list snapshots", err)
	}
	var es []fuse.DirEntry
	for name := range names {
		es = append(es, fuse.DirEntry{Name: name, Mode: syscall.S_IFDIR})
	}
	sort.Slice(es, func(i, j int) bool { return es[i].Name < es[j].Name })
	return fs.NewListDirStream(es), 0
}

func (n *snapshotsNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	n.mu.Lock()
	si, ok := n.names[name]
	n.mu.Unlock()
	if !ok {
		names, err := n.load(ctx)
		if err != nil {
			return nil, n.m.errno("list snapshots", err)
		}
		if si, ok = names[name]; !ok {
			// A unique id prefix also finds a snapshot (`ls snapshots/ab12cd34` works).
			for k, v := range names {
				if strings.HasSuffix(k, "_"+name) || strings.HasPrefix(v.ID.String(), name) && len(name) >= 8 {
					si, ok = v, true
					break
				}
			}
			if !ok {
				return nil, syscall.ENOENT
			}
		}
	}
	n.m.dirAttr(&out.Attr, si.Snapshot.Time)
	return n.NewInode(ctx, &snapshotNode{m: n.m, si: si}, fs.StableAttr{Mode: syscall.S_IFDIR}), 0
}
