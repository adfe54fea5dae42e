package diskfiles

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/snapferry/snapferry/images/guestfs"
	"github.com/snapferry/snapferry/images/overwrite"
)

// ErrExists marks an existing entry that differs from the restored item and was kept because
// overwrite was not asked for: package overwrite's rule, which every restore follows (Restore
// goes on and returns *overwrite.NotReplaced listing them).
var ErrExists = overwrite.ErrDiffers

// RestoreResult counts what Restore wrote.
type RestoreResult struct {
	Files, Dirs, Symlinks, Skipped int // Skipped: devices, fifos, sockets (not files to restore)
	HardLinks                      int // names linked to a file restored earlier in this run
	Unchanged                      int // already there with the same contents
	Bytes                          int64
}

// Restore writes what t names (a file, a folder with everything below it, or a symlink) into
// the folder target, with modes and modification times. A file is written under a temporary
// name and renamed when complete, zero runs left as holes; an existing file of the same name is
// left alone when identical and otherwise kept (listed in the *overwrite.NotReplaced returned at
// the end, the rest goes on) unless replace. Names of one file (hard links, same inode) restored
// in one run are hard links again. A name from the guest that could leave target ("..", a slash)
// is refused.
func Restore(t *Target, target string, replace bool) (RestoreResult, error) {
	var res RestoreResult
	if t.Volume == nil {
		return res, fmt.Errorf("name a partition: %s holds %d (see `snapferry ls`); to restore the whole disk, name the disk alone", t.Disk.Name, len(t.Guest.Volumes))
	}
	f, err := t.Volume.OpenFS()
	if err != nil {
		return res, err
	}
	e, err := f.Lstat(t.Inner)
	if err != nil {
		return res, err
	}
	name := path.Base(t.Inner)
	if t.Inner == "." {
		name = strings.ReplaceAll(t.Volume.Name, "/", "-")
	}
	w := &writer{fs: f, overwrite: replace, res: &res, buf: make([]byte, 1<<20), links: map[uint64]string{}}
	if err := w.item(t.Inner, e, filepath.Join(target, name)); err != nil {
		return res, err
	}
	return res, overwrite.Check(w.kept)
}

type writer struct {
	fs        guestfs.FS
	overwrite bool
	res       *RestoreResult
	buf       []byte
	kept      []string          // existing entries that differ, left as they were
	links     map[uint64]string // inode -> the path it was restored to, for files with several names
}

func safeName(n string) error {
	if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\x00") {
		return fmt.Errorf("the guest file system holds an entry named %q, which cannot be restored safely", n)
	}
	return nil
}

func (w *writer) item(src string, e guestfs.Entry, dst string) error {
	switch {
	case e.Mode.IsDir():
		return w.dir(src, e, dst)
	case e.Mode.IsRegular():
		return w.file(src, e, dst)
	case e.Mode&fs.ModeSymlink != 0:
		return w.symlink(e, dst)
	}
	w.res.Skipped++
	return nil
}

func (w *writer) dir(src string, e guestfs.Entry, dst string) error {
	if fi, err := os.Lstat(dst); err == nil && !fi.IsDir() {
		if !w.overwrite {
			w.kept = append(w.kept, dst)
			return nil
		}
		if err := os.Remove(dst); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	es, err := w.fs.ReadDir(src)
	if err != nil {
		return err
	}
	for _, c := range es {
		if err := safeName(c.Name); err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
		if err := w.item(path.Join(src, c.Name), c, filepath.Join(dst, c.Name)); err != nil {
			return err
		}
	}
	w.res.Dirs++
	// Mode and time last: writing the children changed the folder's time.
	if err := os.Chmod(dst, e.Mode.Perm()|e.Mode&(fs.ModeSetgid|fs.ModeSticky)); err != nil {
		return err
	}
	return os.Chtimes(dst, time.Time{}, e.ModTime)
}

func (w *writer) file(src string, e guestfs.Entry, dst string) error {
	in, err := w.fs.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if first, ok := w.links[e.Inode]; ok && e.Nlink > 1 {
		return w.link(first, dst)
	}
	if fi, err := os.Lstat(dst); err == nil {
		if fi.Mode().IsRegular() && fi.Size() == e.Size && w.same(in, dst) {
			w.res.Unchanged++
			if e.Nlink > 1 && e.Inode != 0 {
				w.links[e.Inode] = dst
			}
			return nil
		}
		if !w.overwrite {
			w.kept = append(w.kept, dst)
			return nil
		}
	}
	tmpName := filepath.Join(filepath.Dir(dst), overwrite.PartialName(filepath.Base(dst)))
	_ = os.Remove(tmpName) // a leftover of a killed run; never written through
	tmp, err := os.OpenFile(tmpName, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	for off := int64(0); off < e.Size; {
		n := int(min(int64(len(w.buf)), e.Size-off))
		if _, err := in.ReadAt(w.buf[:n], off); err != nil && err != io.EOF {
			return fmt.Errorf("read %s: %w", src, err)
		}
		if !allZero(w.buf[:n]) { // a zero run stays a hole
			if _, err := tmp.WriteAt(w.buf[:n], off); err != nil {
				return err
			}
		}
		off += int64(n)
	}
	if err := tmp.Truncate(e.Size); err != nil {
		return err
	}
	if err := tmp.Chmod(e.Mode.Perm() | e.Mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chtimes(tmp.Name(), time.Time{}, e.ModTime); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	ok = true
	w.res.Files++
	w.res.Bytes += e.Size
	if e.Nlink > 1 && e.Inode != 0 {
		w.links[e.Inode] = dst
	}
	return nil
}

// link makes dst another name of first (restored earlier in this run), under a temporary name
// renamed into place, so an existing dst is only replaced with overwrite.
func (w *writer) link(first, dst string) error {
	if a, err := os.Stat(first); err == nil {
		if b, err := os.Lstat(dst); err == nil {
			if os.SameFile(a, b) {
				w.res.Unchanged++
				return nil
			}
			if !w.overwrite {
				w.kept = append(w.kept, dst)
				return nil
			}
		}
	}
	tmp := filepath.Join(filepath.Dir(dst), overwrite.PartialName(filepath.Base(dst)))
	_ = os.Remove(tmp)
	if err := os.Link(first, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	w.res.HardLinks++
	return nil
}

// same compares a guest file with an existing local one.
func (w *writer) same(in guestfs.File, dst string) bool {
	f, err := os.Open(dst)
	if err != nil {
		return false
	}
	defer f.Close()
	other := make([]byte, len(w.buf))
	for off := int64(0); off < in.Size(); {
		n := int(min(int64(len(w.buf)), in.Size()-off))
		if _, err := in.ReadAt(w.buf[:n], off); err != nil && err != io.EOF {
			return false
		}
		if _, err := io.ReadFull(f, other[:n]); err != nil || !bytes.Equal(w.buf[:n], other[:n]) {
			return false
		}
		off += int64(n)
	}
	return true
}

func (w *writer) symlink(e guestfs.Entry, dst string) error {
	if cur, err := os.Readlink(dst); err == nil && cur == e.Target {
		w.res.Unchanged++
		return nil
	} else if _, err := os.Lstat(dst); err == nil && !w.overwrite {
		w.kept = append(w.kept, dst)
		return nil
	}
	tmp := filepath.Join(filepath.Dir(dst), overwrite.PartialName(filepath.Base(dst)))
	_ = os.Remove(tmp)
	if err := os.Symlink(e.Target, tmp); err != nil {
		return err
	}
	ts := []unix.Timespec{unix.NsecToTimespec(e.ModTime.UnixNano()), unix.NsecToTimespec(e.ModTime.UnixNano())}
	_ = unix.UtimesNanoAt(unix.AT_FDCWD, tmp, ts, unix.AT_SYMLINK_NOFOLLOW) // not every file system keeps link times
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	w.res.Symlinks++
	return nil
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
