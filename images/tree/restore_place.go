package tree

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/snapferry/snapferry/images/overwrite"
	"github.com/snapferry/snapferry/images/repo"
)

// This file applies package overwrite's rule to the entries of a tree: an entry that is
// missing is created (a regular file under a temporary name, renamed when complete), one that
// is already there with the same content is left alone, and one that differs is kept
// (overwrite.ErrDiffers) unless the restore overwrites.

// blobSizer is a BlobStore that knows a blob's length without loading it (repo.Repository
// reads it from the index). With it, a file already on disk is compared with the snapshot by
// hashing its chunks; without it each chunk is loaded and compared byte for byte.
type blobSizer interface {
	BlobSize(id repo.ID) (int, bool)
}

// openFile decides what happens to regular file j and, when it is to be written, creates its
// temporary file (j.fd, j.tmp). It returns false when the file is done already (identical, kept
// or failed: counted and released); an error only when the restore is cancelled.
func (r *restorer) openFile(ctx context.Context, j *restoreJob) (bool, error) {
	dirfd, name := j.dir.fd, j.node.Name
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT):
	case err != nil:
		r.fail(j.path, fmt.Errorf("look at the existing entry: %w", err))
		r.fileDone(*j, false)
		return false, nil
	default:
		if st.Mode&unix.S_IFMT == unix.S_IFREG && uint64(st.Size) == j.node.Size {
			same, err := r.sameFile(ctx, dirfd, name, j.node)
			if ctx.Err() != nil {
				return false, context.Cause(ctx)
			}
			if err == nil && same {
				r.progress.Add(int64(j.node.Size))
				r.fileDone(*j, true)
				return false, nil
			}
		}
		switch {
		case !r.overwrite:
			r.fail(j.path, overwrite.ErrDiffers)
			r.fileDone(*j, false)
			return false, nil
		case st.Mode&unix.S_IFMT == unix.S_IFDIR:
			r.fail(j.path, errors.New("a directory is where the snapshot has a file: not replaced (remove it, or restore to another --target)"))
			r.fileDone(*j, false)
			return false, nil
		}
	}
	j.tmp = overwrite.PartialName(name)
	// A leftover of a killed run may sit under the temporary name: replace it, never follow it.
	unix.Unlinkat(dirfd, j.tmp, 0)
	fd, err := unix.Openat(dirfd, j.tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		r.fail(j.path, fmt.Errorf("create file: %w", err))
		r.fileDone(*j, false)
		return false, nil
	}
	j.fd = fd
	return true, nil
}

// sameFile reports whether file name in dirfd, already known to have n's size, holds n's
// contents. It reads the file without touching its atime where the kernel lets it.
func (r *restorer) sameFile(ctx context.Context, dirfd int, name string, n *repo.Node) (bool, error) {
	flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(dirfd, name, flags|unix.O_NOATIME, 0)
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL) {
		fd, err = unix.Openat(dirfd, name, flags, 0)
	}
	if err != nil {
		return false, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var buf []byte
	var total uint64
	for _, id := range n.Content {
		size, known := -1, false
		if len(n.Content) == 1 {
			size, known = int(n.Size), true
		} else if r.sizer != nil {
			size, known = r.sizer.BlobSize(id)
		}
		var want []byte
		if !known {
			if want, err = r.bs.LoadBlob(ctx, repo.DataBlob, id, nil); err != nil {
				return false, err
			}
			size = len(want)
		}
		if uint64(size) > n.Size-total {
			return false, nil
		}
		if cap(buf) < size {
			buf = make([]byte, size)
		}
		got := buf[:size]
		if _, err := io.ReadFull(f, got); err != nil {
			return false, nil
		}
		if (known && r.bs.BlobID(got) != id) || (!known && !bytes.Equal(got, want)) {
			return false, nil
		}
		total += uint64(size)
	}
	return total == n.Size, nil
}

// placeEntry creates an entry that is made in one step (symlink, device, fifo) with create,
// which is given the name to create. An existing entry for which same holds is left alone; any
// other is kept (overwrite.ErrDiffers) or, with overwrite, replaced by renaming a new one over
// it. placed says whether the entry was (re)made, so its metadata needs setting.
func (r *restorer) placeEntry(dirfd int, name string, same func(*unix.Stat_t) bool, create func(name string) error) (placed bool, err error) {
	var st unix.Stat_t
	err = unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT):
		return true, create(name)
	case err != nil:
		return false, err
	case same(&st):
		return false, nil
	case !r.overwrite:
		return false, overwrite.ErrDiffers
	case st.Mode&unix.S_IFMT == unix.S_IFDIR:
		return false, errors.New("a directory is in the way: not replaced (remove it, or restore to another --target)")
	}
	return true, replaceWith(dirfd, name, create)
}

// replaceWith makes a new entry under name's temporary name with create and renames it over
// name; on failure the temporary entry is removed.
func replaceWith(dirfd int, name string, create func(name string) error) error {
	tmp := overwrite.PartialName(name)
	unix.Unlinkat(dirfd, tmp, 0)
	if err := create(tmp); err != nil {
		return err
	}
	if err := unix.Renameat(dirfd, tmp, dirfd, name); err != nil {
		unix.Unlinkat(dirfd, tmp, 0)
		return fmt.Errorf("replace existing entry: %w", err)
	}
	return nil
}

// readlinkAt returns the target of symlink name in dirfd, or "" when it cannot be read.
func readlinkAt(dirfd int, name string) string {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dirfd, name, buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

// linkGroup is a hard-linked inode of the snapshot: its first path is restored as a file, the
// others become links to it once that file is in place.
type linkGroup struct {
	first   string       // path of the first entry relative to the target
	state   int          // linkPending, linkDone or linkFailed; guarded by restorer.mu
	waiting []restoreJob // further paths met while the first was still being written
}

const (
	linkPending = iota
	linkReady
	linkFailed
)

// waitForLink queues j to be linked to g's first file if that is still being written (holding
// j's directory open meanwhile) and reports whether it did.
func (r *restorer) waitForLink(g *linkGroup, j restoreJob) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if g.state != linkPending {
		return false
	}
	j.dir.pending.Add(1)
	g.waiting = append(g.waiting, j)
	return true
}

// linkDone records that g's first file is in place (ok) or not, and makes the links waiting.
func (r *restorer) linkDone(g *linkGroup, ok bool) {
	if g == nil {
		return
	}
	r.mu.Lock()
	g.state = linkFailed
	if ok {
		g.state = linkReady
	}
	waiting := g.waiting
	g.waiting = nil
	r.mu.Unlock()
	for _, j := range waiting {
		r.makeLink(j.dir.fd, j.node.Name, j.path, g)
		r.progress.File(1)
		r.release(j.dir)
	}
}

// makeLink links name in dirfd to g's first file. An entry that already is that file is left
// alone; any other is kept, or replaced with overwrite.
func (r *restorer) makeLink(dirfd int, name, p string, g *linkGroup) {
	r.mu.Lock()
	state := g.state
	r.mu.Unlock()
	if state != linkReady {
		r.fail(p, fmt.Errorf("hard link to /%s not made: that file was not restored", g.first))
		return
	}
	same := func(st *unix.Stat_t) bool {
		var first unix.Stat_t
		return unix.Fstatat(r.rootfd, g.first, &first, unix.AT_SYMLINK_NOFOLLOW) == nil && first.Ino == st.Ino && first.Dev == st.Dev
	}
	if _, err := r.placeEntry(dirfd, name, same, func(n string) error { return unix.Linkat(r.rootfd, g.first, dirfd, n, 0) }); err != nil {
		if !errors.Is(err, overwrite.ErrDiffers) {
			err = fmt.Errorf("hard link to /%s: %w", g.first, err)
		}
		r.fail(p, err)
	}
}
