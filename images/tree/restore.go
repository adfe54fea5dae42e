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
	"github.com/snapferry/snapferry/images/overwrite"
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
	// Overwrite replaces existing entries whose content differs from the snapshot; without it
	// they are kept and reported as overwrite.ErrDiffers (package overwrite has the rule).
	Overwrite bool

	treeLoaded func(*repo.Tree) // tests: see restorer.treeLoaded
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
		bs:        bs,
		rootfd:    rootfd,
		owner:     os.Geteuid() == 0,
		overwrite: opts.Overwrite,
		include:   map[string]bool{},
		links:     map[linkKey]*linkGroup{},
		jobs:      make(chan []restoreJob, 2*nworkers),
		progress:  progress.OrNop(opts.Progress),
		loaders:   make(chan struct{}, prefetchLoaders),
		// Decoding chunks is CPU work: one per core plus one waiting on the store keep the
		// cores busy, as in backup. Every I/O worker holding a chunk-sized buffer of its own
		// pinned ~15 MiB (8 workers, chunks up to 4 MiB) in a /usr/share restore, measured.
		chunkBufs:  newChunkPool(min(pipeline.Workers(0), 6)+1, 2*DefaultChunking.Avg),
		open:       map[*restoreDir]struct{}{},
		treeLoaded: opts.treeLoaded,
	}
	r.sizer, _ = bs.(blobSizer)
	defer tightenGC(bs)()
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
		for jobs := range r.jobs {
			var err error
			if len(jobs) == 1 && !jobs[0].batched {
				err = r.writeFile(ctx, jobs[0])
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
	bs        repo.BlobStore
	sizer     blobSizer // bs, when it can tell a blob's length without loading it
	rootfd    int
	owner     bool
	overwrite bool
	include   map[string]bool        // include path -> matched; walker only
	links     map[linkKey]*linkGroup // hard-linked inodes met so far; walker only (a group's state: mu)
	jobs      chan []restoreJob      // one file, or a batch of small files
	progress  progress.Reporter

	batch      []restoreJob // small files waiting to be sent as one batch; walker only
	batchBytes uint64
	loaders    chan struct{} // semaphore of the goroutines loading trees ahead of the walker
	chunkBufs  *chunkPool    // buffers of the workers writing files of their own

	// treeLoaded, when set (tests), sees every tree the walker gets, to check how many stay
	// reachable.
	treeLoaded func(*repo.Tree)

	mu     sync.Mutex
	errors []FileError
	// open are the directories opened and not yet finished (guarded by mu). Only these are
	// kept: a list of every directory ever opened kept every tree of the snapshot reachable
	// through their nodes until the end (all of /usr/share's trees at once, measured).
	open map[*restoreDir]struct{}
}

// openedDir registers a newly opened directory, held once by the walker.
func (r *restorer) openedDir(d *restoreDir) *restoreDir {
	d.pending.Store(1)
	r.mu.Lock()
	r.open[d] = struct{}{}
	r.mu.Unlock()
	return d
}

// closeLeftovers closes what a failed run left open: directories never finished. Queued files
// hold nothing open (workers open them). It runs after every goroutine has returned.
func (r *restorer) closeLeftovers() {
	for range r.jobs {
	}
	for d := range r.open {
		unix.Close(d.fd)
	}
	clear(r.open)
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
	tree    repo.ID // the tree restored into it; walker only
}

// restoreJob is a regular file a worker places and fills: alone, or as a small file of a batch.
// The worker writes it under tmp (fd) and renames it to its name once complete.
type restoreJob struct {
	dir     *restoreDir
	node    *repo.Node
	path    string
	batched bool
	group   *linkGroup // set for the first path of a hard-linked inode
	fd      int
	tmp     string
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
	if r.treeLoaded != nil {
		r.treeLoaded(t)
	}
	futs := prefetchSubtrees(ctx, r.loaders, r.bs, t, func(n *repo.Node) bool { return r.selected(path.Join(d.path, n.Name)) },
		func(n *repo.Node, data []byte, err error) (*repo.Tree, error) {
			return decodeTree(path.Join(d.path, n.Name), *n.Subtree, data, err)
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
		fd, err := makeDir(d.fd, n.Name, r.overwrite)
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
		same := func(st *unix.Stat_t) bool {
			return st.Mode&unix.S_IFMT == unix.S_IFLNK && readlinkAt(d.fd, n.Name) == n.LinkTarget
		}
		placed, err := r.placeEntry(d.fd, n.Name, same, func(name string) error { return unix.Symlinkat(n.LinkTarget, d.fd, name) })
		if err != nil {
			r.fail(p, fmt.Errorf("create symlink: %w", err))
			return nil
		}
		if placed {
			r.setMeta(d.fd, -1, n, n.Name, p)
		}
	case repo.NodeFifo, repo.NodeSocket, repo.NodeDev, repo.NodeCharDev:
		mode := specialType(n.Type)
		same := func(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == mode && st.Rdev == n.Rdev }
		placed, err := r.placeEntry(d.fd, n.Name, same, func(name string) error {
			return unix.Mknodat(d.fd, name, mode|unixPerm(fs.FileMode(n.Mode)), int(n.Rdev))
		})
		if err != nil {
			if errors.Is(err, unix.EPERM) {
				err = fmt.Errorf("%w (creating devices needs root)", err)
			}
			r.fail(p, fmt.Errorf("create %s: %w", n.Type, err))
			return nil
		}
		if placed {
			r.setMeta(d.fd, -1, n, n.Name, p)
		}
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

// createFile queues a regular file for the workers, or links it to the first path of its
// hard-linked inode (at once when that file is done, else when it is).
func (r *restorer) createFile(ctx context.Context, d *restoreDir, n *repo.Node, p string) error {
	if n.Error != "" && len(n.Content) == 0 && n.Size > 0 {
		r.fail(p, fmt.Errorf("not in the snapshot: the backup could not read it (%s)", n.Error))
		return nil
	}
	j := restoreJob{dir: d, node: n, path: p, fd: -1}
	if n.Links > 1 {
		key := linkKey{n.DeviceID, n.Inode}
		g, ok := r.links[key]
		if !ok {
			j.group = &linkGroup{first: strings.TrimPrefix(p, "/")}
			r.links[key] = j.group
		} else if r.waitForLink(g, j) {
			return nil
		} else {
			r.makeLink(d.fd, n.Name, p, g)
			r.progress.File(1)
			return nil
		}
	} else if len(n.Content) == 0 || (len(n.Content) == 1 && n.Size <= restoreBatchBlob) {
		return r.batchFile(ctx, j)
	}
	d.pending.Add(1)
	return pipeline.Send(ctx, r.jobs, []restoreJob{j})
}

// makeDir creates (or reuses) directory name in dirfd and opens it. An existing entry of that
// name that is not a directory, a symlink included, is never followed: it is kept
// (overwrite.ErrDiffers) or, with overwrite, replaced.
func makeDir(dirfd int, name string, replace bool) (int, error) {
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	err := unix.Mkdirat(dirfd, name, 0o700)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, fmt.Errorf("create directory: %w", err)
	}
	fd, err := unix.Openat(dirfd, name, flags, 0)
	if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
		if !replace {
			return -1, overwrite.ErrDiffers
		}
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

// writeFile is a worker's part: place the file (left alone when identical, kept when it
// differs and overwrite is off), write the contents under the temporary name (zero pages left
// as holes, so sparse files stay sparse), set metadata, rename, release the dir.
func (r *restorer) writeFile(ctx context.Context, j restoreJob) error {
	ok, err := r.openFile(ctx, &j)
	if err != nil || !ok {
		return err
	}
	f := os.NewFile(uintptr(j.fd), j.path)
	// A buffer only for a file that is written: one left alone or kept holds none.
	pooled, err := r.chunkBufs.get(ctx, 0)
	if err != nil {
		f.Close()
		unix.Unlinkat(j.dir.fd, j.tmp, 0)
		return err
	}
	defer r.chunkBufs.put(pooled)
	var written uint64
	buf := pooled
	for i, id := range j.node.Content {
		data, err := r.bs.LoadBlob(ctx, repo.DataBlob, id, buf)
		if err != nil {
			if ctx.Err() != nil {
				f.Close()
				unix.Unlinkat(j.dir.fd, j.tmp, 0)
				return context.Cause(ctx)
			}
			r.fail(j.path, fmt.Errorf("load chunk %d: %w", i, err))
			break
		}
		if cap(data) > cap(buf) { // a chunk bigger than the pool's: keep it for this file's next
			buf = data[:0]
		}
		if err := disk.WriteSparse(f, data, int64(written)); err != nil {
			r.fail(j.path, fmt.Errorf("write: %w", err))
			break
		}
		written += uint64(len(data))
		r.progress.Add(int64(len(data)))
	}
	r.finishFile(j, f, written)
	return nil
}

// finishFile completes a file whose contents are written under its temporary name: size,
// metadata and the rename to its name when all of it was written; otherwise the temporary
// file is removed, so nothing half-written is left. Then it releases the directory.
func (r *restorer) finishFile(j restoreJob, f *os.File, written uint64) {
	ok := true
	// Zero pages were skipped, so trailing ones still need the file to reach its size.
	if err := f.Truncate(int64(written)); err != nil {
		r.fail(j.path, fmt.Errorf("set size: %w", err))
		ok = false
	}
	if written != j.node.Size {
		r.fail(j.path, fmt.Errorf("restored %d of %d bytes", written, j.node.Size))
		ok = false
	}
	if ok {
		r.setMeta(j.dir.fd, j.fd, j.node, j.tmp, j.path)
	}
	if err := f.Close(); err != nil {
		r.fail(j.path, fmt.Errorf("close: %w", err))
		ok = false
	}
	if ok {
		if err := unix.Renameat(j.dir.fd, j.tmp, j.dir.fd, j.node.Name); err != nil {
			r.fail(j.path, fmt.Errorf("rename into place: %w", err))
			ok = false
		}
	}
	if !ok {
		unix.Unlinkat(j.dir.fd, j.tmp, 0)
	}
	r.fileDone(j, ok)
}

// fileDone counts a file, makes the hard links waiting for it and releases its directory.
func (r *restorer) fileDone(j restoreJob, ok bool) {
	r.progress.File(1)
	r.linkDone(j.group, ok)
	r.release(j.dir)
}

// setMeta applies ownership (as root), mode and times to entry n, which is called name in dirfd
// (its temporary name until renamed); fd is the entry opened, or -1. chown comes first because
// it clears setuid bits that chmod then sets.
func (r *restorer) setMeta(dirfd, fd int, n *repo.Node, name, p string) {
	mode := fs.FileMode(n.Mode)
	if r.owner {
		var err error
		if fd >= 0 {
			err = unix.Fchown(fd, int(n.UID), int(n.GID))
		} else {
			err = unix.Fchownat(dirfd, name, int(n.UID), int(n.GID), unix.AT_SYMLINK_NOFOLLOW)
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
			err = unix.Fchmodat(dirfd, name, unixPerm(mode), 0)
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
	if err := unix.UtimesNanoAt(dirfd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		r.fail(p, fmt.Errorf("set times: %w", err))
	}
}

// release drops one hold on d; the last applies d's metadata, closes it and releases upward.
func (r *restorer) release(d *restoreDir) {
	for d != nil && d.pending.Add(-1) == 0 {
		if d.node != nil {
			r.setMeta(d.parent.fd, d.fd, d.node, d.node.Name, d.path)
			r.progress.File(1)
		}
		if err := unix.Close(d.fd); err != nil {
			r.fail(d.path, fmt.Errorf("close directory: %w", err))
		}
		r.mu.Lock()
		delete(r.open, d)
		r.mu.Unlock()
		d = d.parent
	}
}
