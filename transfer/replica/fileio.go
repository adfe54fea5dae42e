package replica

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// noFollow makes opens of replica files refuse a symlink in the last component (the jail has
// checked the folders above it).
const noFollow = syscall.O_NOFOLLOW

// syncDir makes a rename or create in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open folder %s to fsync it: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("fsync folder %s: %w", dir, err)
	}
	return nil
}

// punchHole deallocates [off, off+n) keeping the size; where the file system cannot punch holes
// it writes zeros instead (same content, no space saved).
func punchHole(f *os.File, off int64, n int, zeros []byte) error {
	err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, int64(n))
	if err == nil {
		return nil
	}
	if !errors.Is(err, syscall.EOPNOTSUPP) && !errors.Is(err, syscall.ENOSYS) && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("punch hole in %s at %d: %w", f.Name(), off, err)
	}
	if _, err := f.WriteAt(zeros[:n], off); err != nil {
		return fmt.Errorf("write zeros to %s at %d: %w", f.Name(), off, err)
	}
	return nil
}

// copyFileAtomic writes the contents of src to dst through a temp file and a rename, so dst is
// always either the old or the new file.
func copyFileAtomic(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeAtomic(dst, mode, func(out *os.File) error {
		_, err := out.ReadFrom(in)
		return err
	})
}

// writeAtomic creates dst's replacement in dst's folder with fill, fsyncs it and renames it
// over dst, then fsyncs the folder.
func writeAtomic(dst string, mode os.FileMode, fill func(*os.File) error) error {
	dir := filepath.Dir(dst)
	tmp, err := os.CreateTemp(dir, ".snapferry-tmp-*")
	if err != nil {
		return fmt.Errorf("create temp file for %s: %w", dst, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := fill(tmp); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("chmod %s: %w", dst, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dst, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("rename into %s: %w", dst, err)
	}
	return syncDir(dir)
}
