package disk

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// extentMapper finds the allocated ranges of a file one at a time, so a file with millions of
// extents never needs a list of them in memory.
type extentMapper struct {
	f    *os.File
	size int64
	// dense is set once the file turned out not to support SEEK_DATA (EINVAL: old filesystems,
	// block devices; ENOSYS/ENOTSUP from kernels such as VMkernel that may lack it): everything
	// from then on counts as data.
	dense bool
}

// next returns the first data range [start, end) that begins at or after off, or ok=false
// when only holes follow. end is clipped to the file size.
func (m *extentMapper) next(off int64) (start, end int64, ok bool, err error) {
	if off >= m.size {
		return 0, 0, false, nil
	}
	if m.dense {
		return off, m.size, true, nil
	}
	start, err = m.f.Seek(off, unix.SEEK_DATA)
	switch {
	case errors.Is(err, syscall.ENXIO):
		return 0, 0, false, nil // no data after off
	case errors.Is(err, syscall.EINVAL), errors.Is(err, syscall.EOPNOTSUPP), errors.Is(err, syscall.ENOTSUP), errors.Is(err, syscall.ENOSYS):
		m.dense = true
		return off, m.size, true, nil
	case err != nil:
		return 0, 0, false, fmt.Errorf("seek data in %s at %d: %w", m.f.Name(), off, err)
	}
	if start >= m.size {
		return 0, 0, false, nil
	}
	end, err = m.f.Seek(start, unix.SEEK_HOLE)
	if err != nil {
		return 0, 0, false, fmt.Errorf("seek hole in %s at %d: %w", m.f.Name(), start, err)
	}
	return start, min(end, m.size), true, nil
}

// fileSize is the apparent size of a regular file, or the capacity of a block device (whose
// st_size is 0).
func fileSize(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	if fi.Mode().IsRegular() {
		return fi.Size(), nil
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w", f.Name(), err)
	}
	return size, nil
}
