package tree

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/snapferry/snapferry/images/disk"
	"github.com/snapferry/snapferry/images/pipeline"
	"github.com/snapferry/snapferry/images/progress"
	"github.com/snapferry/snapferry/images/repo"
)

// RestoreOptions tune a tree restore.
type RestoreOptions struct {
	// Include lists snapshot paths ("/etc/ssh") to restore with everything below them; their
	// parent directories are recreated too. Empty restores everything.
	Include  []string
	Workers  int // goroutines loading and writing file contents; default 4 per CPU
	Progress progress.Reporter
}

// Restore recreates the tree rooted at root below target (created if missing): a snapshot
// path /etc/hosts lands at target/etc/hosts. Every entry is created relative to its open
// parent directory without following symlinks, and names are checked (ErrUnsafeTree), so
// nothing is written outside target. Ownership is restored when running as root; modes and
// times always, after contents, and a directory's after everything inside it.
//
// Entries that cannot be restored (a device without root, a missing blob) are returned as
// FileErrors and the rest goes on; an unsafe tree, an Include path missing from the snapshot
// or an unusable target end the restore with an error.
func Restore(ctx context.Context, bs repo.BlobStore, root repo.ID, target string, opts RestoreOptions) ([]FileError, error) {
	if err := os.MkdirAll(target, 0o700); err != nil {
		return nil, fmt.Errorf("restore: create target: %w", err)
	}
	rootfd, err := unix.Open(target, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("restore: open target %s: %w", target, err)
	}
	nworkers := pipeline.IOWorkers(opts.Workers)
	r := &restorer{
		bs:       bs,
		rootfd:   rootfd,
		owner:    os.Geteuid() == 0,
		include:  map[string]bool{},
		links:    map[linkKey]string{},
		jobs:     make(chan []restoreJob, 2*nworkers),
		progress: progress.OrNop(opts.Progress),
		loaders:  make(chan struct{}, prefetchLoaders),
	}
	for _, p := range opts.Include {
		r.include[path.Clean("/"+p)] = false
	}
	r.progress.Start("restore", -1)
	defer r.progress.Done()

	g := pipeline.NewGroup(ctx)
	g.Go(func(ctx context.Context) error {
		defer close(r.jobs)
		top := r.openedDir(&restoreDir{fd: rootfd, path: "/"})
		if err := r.restoreTree(ctx, top, root, nil); err != nil {
			return err
		}
		return r.sendBatch(ctx)
	})
	g.GoWorkers(nworkers, func(ctx context.Context) error {
		var buf []byte
		for jobs := range r.jobs {
			var err error
			if len(jobs) == 1 && jobs[0].fd >= 0 {
				buf, err = r.writeFile(ctx, jobs[0], buf)
			} else {
				err = r.writeBatch(ctx, jobs)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}, nil)
	err = g.Wait()
	r.closeLeftovers()
	if err != nil {
		return r.errors, fmt.Errorf("restore to %s: %w", target, err)
	}
	var missing []string
	for p, seen := range r.include {
		if !seen {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return r.errors, fmt.Errorf("restore: %s not in the snapshot", strings.Join(missing, ", "))
	}
	sort.Slice(r.errors, func(i, j int) bool { return r.errors[i].Path < r.errors[j].Path })
	return r.errors, nil
}

type linkKey struct{ dev, ino uint64 }

// restorer is the state of one Restore run.
type restorer struct {
	bs       repo.BlobStore
	rootfd   int
	owner    bool
	include  map[string]bool    // include path -> matched; walker only
	links    map[linkKey]string // first restored path (relative to target) of a hard-linked inode; walker only
	jobs     chan []restoreJob  // one file the walker created, or a batch of small files
	progress progress.Reporter

	batch      []restoreJob // small files waiting to be sent as one batch; walker only
	batchBytes uint64
	loaders    chan struct{} // semaphore of the goroutines loading trees ahead of the walker

	dirs []*restoreDir // every directory opened; walker appends, closeLeftovers reads after the run

	mu     sync.Mutex
	errors []FileError
}

// openedDir registers a newly opened directory, held once by the walker.
func (r *restorer) openedDir(d *restoreDir) *restoreDir {
	d.pending.Store(1)
	r.dirs = append(r.dirs, d)
	return d
}

// closeLeftovers closes what a failed run left open: directories never finished and files
// still queued for workers that stopped. It runs after every goroutine has returned.
func (r *restorer) closeLeftovers() {
	for jobs := range r.jobs {
		for _, j := range jobs {
			if j.fd >= 0 {
				unix.Close(j.fd)
			}
		}
	}
	for _, d := range r.dirs {
		if !d.closed {
			unix.Close(d.fd)
		}
	}
}

// restoreDir is a restored directory still open for its entries. As in backup, pending counts
// the walker and every child not finished; the last release applies the directory's own
// metadata (so writing its entries cannot change its times again), closes it and releases the
// parent.
type restoreDir struct {
	fd      int
	path    string     // snapshot path
	node    *repo.Node // nil for the target itself, whose metadata restore leaves alone
	parent  *restoreDir
	pending atomic.Int32
	closed  bool    // set by the goroutine that finished it; read after the run
	tree    repo.ID // the tree restored into it; walker only
}

// restoreJob is a regular file whose contents a worker writes: created by the walker (fd), or
// a small file of a batch (fd -1) that the worker creates.
type restoreJob struct {
	dir  *restoreDir
	node *repo.Node
	fd   int
	path string
}

func (r *restorer) fail(p string, err error) {
	r.mu.Lock()
	r.errors = append(r.errors, FileError{Path: p, Err: err})
	r.mu.Unlock()
}

// selected reports whether p is restored: inside an include path, or on the way to one.
func (r *restorer) selected(p string) bool {
	if len(r.include) == 0 {
		return true
	}
	ok := false
	for inc := range r.include {
		switch {
		case p == inc:
			r.include[inc] = true
			ok = true
		case inc == "/" || strings.HasPrefix(p, inc+"/") || strings.HasPrefix(inc, p+"/"):
			ok = true
		}
	}
	return ok
}

// restoreTree creates the entries of tree id inside d, which is open, then releases the
// walker's hold on d. fut, when not nil, is that tree already being loaded.
func (r *restorer) restoreTree(ctx context.Context, d *restoreDir, id repo.ID, fut *treeFuture) error {
	d.tree = id
	var ancestors []repo.ID
	for a := d.parent; a != nil; a = a.parent {
		ancestors = append(ancestors, a.tree)
	}
	if err := checkNotCycle(d.path, id, ancestors); err != nil {
		return err
	}
	var t *repo.Tree
	var err error
	if fut != nil {
		t, err = fut.wait(ctx)
	} else {
		t, err = readTree(ctx, r.bs, d.path, id)
	}
	if errors.Is(err, ErrUnsafeTree) {
		return err
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if err != nil {
		r.fail(d.path, err)
		r.release(d)
		return nil
	}
	futs := prefetchSubtrees(ctx, r.loaders, t, func(n *repo.Node) bool { return r.selected(path.Join(d.path, n.Name)) },
		func(ctx context.Context, n *repo.Node) (*repo.Tree, error) {
			return readTree(ctx, r.bs, path.Join(d.path, n.Name), *n.Subtree)
		})
	for i := range t.Nodes {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		n := &t.Nodes[i]
		p := path.Join(d.path, n.Name)
		if !r.selected(p) {
			continue
		}
		var fut *treeFuture
		if n.Type == repo.NodeDir {
			fut = futs.take(n.Name)
		}
		if err := r.restoreNode(ctx, d, n, p, fut); err != nil {
			return err
		}
	}
	r.release(d)
	return nil
}

// restoreNode restores one entry of d; fut is its subtree being loaded, if it is a directory.
func (r *restorer) restoreNode(ctx context.Context, d *restoreDir, n *repo.Node, p string, fut *treeFuture) error {
	switch n.Type {
	case repo.NodeDir:
		fd, err := makeDir(d.fd, n.Name)
		if err != nil {
			r.fail(p, err)
			return nil
		}
		child := r.openedDir(&restoreDir{fd: fd, path: p, node: n, parent: d})
		d.pending.Add(1)
		if n.Subtree == nil {
			r.release(child)
			return nil
		}
		return r.restoreTree(ctx, child, *n.Subtree, fut)
	case repo.NodeFile:
		return r.createFile(ctx, d, n, p)
	case repo.NodeSymlink:
		err := retryExisting(d.fd, n.Name, func() error { return unix.Symlinkat(n.LinkTarget, d.fd, n.Name) })
		if err != nil {
			r.fail(p, fmt.Errorf("create symlink: %w", err))
			return nil
		}
		r.setMeta(d.fd, -1, n, p)
	case repo.NodeFifo, repo.NodeSocket, repo.NodeDev, repo.NodeCharDev:
		mode := specialType(n.Type)
		err := retryExisting(d.fd, n.Name, func() error {
			return unix.Mknodat(d.fd, n.Name, mode|unixPerm(fs.FileMode(n.Mode)), int(n.Rdev))
		})
		if err != nil {
			if errors.Is(err, unix.EPERM) {
				err = fmt.Errorf("%w (creating devices needs root)", err)
			}
			r.fail(p, fmt.Errorf("create %s: %w", n.Type, err))
			return nil
		}
		r.setMeta(d.fd, -1, n, p)
	default:
		r.fail(p, fmt.Errorf("unknown entry type %q: skipped", n.Type))
	}
	r.progress.File(1)
	return nil
}

// specialType is the st_mode type of a node restored with mknod.
func specialType(t string) uint32 {
	switch t {
	case repo.NodeFifo:
		return unix.S_IFIFO
	case repo.NodeSocket:
		return unix.S_IFSOCK
	case repo.NodeDev:
		return unix.S_IFBLK
	}
	return unix.S_IFCHR
}

// createFile creates a regular file (or a hard link to one restored before) and queues its
// contents. The walker creates the file itself so a later hard link to it can be made at once.
func (r *restorer) createFile(ctx context.Context, d *restoreDir, n *repo.Node, p string) error {
	if n.Error != "" && len(n.Content) == 0 && n.Size > 0 {
		r.fail(p, fmt.Errorf("not in the snapshot: the backup could not read it (%s)", n.Error))
		return nil
	}
	rel := strings.TrimPrefix(p, "/")
	if n.Links > 1 {
		key := linkKey{n.DeviceID, n.Inode}
		if first, ok := r.links[key]; ok {
			err := retryExisting(d.fd, n.Name, func() error { return unix.Linkat(r.rootfd, first, d.fd, n.Name, 0) })
			if err != nil {
				r.fail(p, fmt.Errorf("hard link to /%s: %w", first, err))
			}
			r.progress.File(1)
			return nil
		}
		r.links[key] = rel
	} else if len(n.Content) <= 1 {
		return r.batchFile(ctx, restoreJob{dir: d, node: n, fd: -1, path: p})
	}
	fd, err := createRegular(d.fd, n.Name)
	if err != nil {
		r.fail(p, fmt.Errorf("create file: %w", err))
		return nil
	}
	d.pending.Add(1)
	return pipeline.Send(ctx, r.jobs, []restoreJob{{dir: d, node: n, fd: fd, path: p}})
}

// createRegular creates (or truncates) regular file name in dirfd for writing, replacing
// whatever else is in the way (retryExisting) and never following a symlink.
func createRegular(dirfd int, name string) (int, error) {
	var fd int
	err := retryExisting(dirfd, name, func() (err error) {
		fd, err = unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		return err
	})
	return fd, err
}

// retryExisting runs create; when an entry of that name is in the way (restoring over an older
// restore: EEXIST, or ELOOP for a symlink where a file is opened with O_NOFOLLOW) it removes
// that entry, never a directory, and tries once more.
func retryExisting(dirfd int, name string, create func() error) error {
	err := create()
	if !errors.Is(err, unix.EEXIST) && !errors.Is(err, unix.ELOOP) {
		return err
	}
	if err := unix.Unlinkat(dirfd, name, 0); err != nil {
		return fmt.Errorf("replace existing entry: %w", err)
	}
	return create()
}

// makeDir creates (or reuses) directory name in dirfd and opens it. An existing entry of that
// name that is not a directory, a symlink included, is replaced rather than followed.
func makeDir(dirfd int, name string) (int, error) {
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	err := unix.Mkdirat(dirfd, name, 0o700)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, fmt.Errorf("create directory: %w", err)
	}
	fd, err := unix.Openat(dirfd, name, flags, 0)
	if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
		if err := unix.Unlinkat(dirfd, name, 0); err != nil {
			return -1, fmt.Errorf("replace existing entry with a directory: %w", err)
		}
		if err := unix.Mkdirat(dirfd, name, 0o700); err != nil {
			return -1, fmt.Errorf("create directory: %w", err)
		}
		fd, err = unix.Openat(dirfd, name, flags, 0)
	}
	if err != nil {
		return -1, fmt.Errorf("open directory: %w", err)
	}
	return fd, nil
}

// writeFile is a worker's part: write the contents (zero pages left as holes, so sparse files
// stay sparse), set metadata, close, release the dir.
func (r *restorer) writeFile(ctx context.Context, j restoreJob, buf []byte) ([]byte, error) {
	f := os.NewFile(uintptr(j.fd), j.path)
	var written uint64
	for i, id := range j.node.Content {
		data, err := r.bs.LoadBlob(ctx, repo.DataBlob, id, buf)
		if err != nil {
			if ctx.Err() != nil {
				f.Close()
				return buf, context.Cause(ctx)
			}
			r.fail(j.path, fmt.Errorf("load chunk %d: %w", i, err))
			break
		}
		buf = data
		if err := disk.WriteSparse(f, data, int64(written)); err != nil {
			r.fail(j.path, fmt.Errorf("write: %w", err))
			break
		}
		written += uint64(len(data))
		r.progress.Add(int64(len(data)))
	}
	r.finishFile(j, f, written)
	return buf, nil
}

// finishFile sets the size of a file whose contents are written, its metadata when all of it
// was, closes it and releases its directory.
func (r *restorer) finishFile(j restoreJob, f *os.File, written uint64) {
	// Zero pages were skipped, so trailing ones still need the file to reach its size.
	if err := f.Truncate(int64(written)); err != nil {
		r.fail(j.path, fmt.Errorf("set size: %w", err))
	}
	if written == j.node.Size {
		r.setMeta(j.dir.fd, j.fd, j.node, j.path)
	} else {
		r.fail(j.path, fmt.Errorf("restored %d of %d bytes", written, j.node.Size))
	}
	if err := f.Close(); err != nil {
		r.fail(j.path, fmt.Errorf("close: %w", err))
	}
	r.progress.File(1)
	r.release(j.dir)
}

// setMeta applies ownership (as root), mode and times to entry n in dirfd; fd is the entry
// opened, or -1. chown comes first because it clears setuid bits that chmod then sets.
func (r *restorer) setMeta(dirfd, fd int, n *repo.Node, p string) {
	mode := fs.FileMode(n.Mode)
	if r.owner {
		var err error
		if fd >= 0 {
			err = unix.Fchown(fd, int(n.UID), int(n.GID))
		} else {
			err = unix.Fchownat(dirfd, n.Name, int(n.UID), int(n.GID), unix.AT_SYMLINK_NOFOLLOW)
		}
		if err != nil {
			r.fail(p, fmt.Errorf("chown: %w", err))
		}
	}
	if n.Type != repo.NodeSymlink {
		var err error
		if fd >= 0 {
			err = unix.Fchmod(fd, unixPerm(mode))
		} else {
			err = unix.Fchmodat(dirfd, n.Name, unixPerm(mode), 0)
		}
		if err != nil {
			r.fail(p, fmt.Errorf("chmod: %w", err))
		}
	}
	atime := n.AccessTime
	if atime.IsZero() {
		atime = n.ModTime
	}
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(n.ModTime.UnixNano())}
	if err := unix.UtimesNanoAt(dirfd, n.Name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		r.fail(p, fmt.Errorf("set times: %w", err))
	}
}

// release drops one hold on d; the last applies d's metadata, closes it and releases upward.
func (r *restorer) release(d *restoreDir) {
	for d != nil && d.pending.Add(-1) == 0 {
		if d.node != nil {
			r.setMeta(d.parent.fd, d.fd, d.node, d.path)
			r.progress.File(1)
		}
		if err := unix.Close(d.fd); err != nil {
			r.fail(d.path, fmt.Errorf("close directory: %w", err))
		}
		d.closed = true
		d = d.parent
	}
}
