package replica

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// dataMap answers "does [off, off+n) lie wholly in a hole?" for increasing offsets with
// SEEK_DATA/SEEK_HOLE, one extent at a time, so memory does not grow with the extent count.
// (images/disk has the same walk, unexported; this one serves blocks in order.)
type dataMap struct {
	f          *os.File
	size       int64
	dense      bool  // SEEK_DATA unsupported: everything counts as data
	start, end int64 // the current data extent [start, end); start == size once no data follows
}

func newDataMap(f *os.File, size int64) *dataMap {
	return &dataMap{f: f, size: size, start: -1, end: -1}
}

// hole reports whether [off, off+n) holds no data. Calls must come with non-decreasing off.
func (m *dataMap) hole(off int64, n int) (bool, error) {
	if m.dense {
		return false, nil
	}
	for m.end <= off && m.start < m.size {
		start, err := m.f.Seek(max(off, m.end), unix.SEEK_DATA)
		switch {
		case errors.Is(err, syscall.ENXIO):
			m.start, m.end = m.size, m.size
			continue
		case errors.Is(err, syscall.EINVAL), errors.Is(err, syscall.EOPNOTSUPP), errors.Is(err, syscall.ENOTSUP):
			m.dense = true
			return false, nil
		case err != nil:
			return false, fmt.Errorf("seek data in %s at %d: %w", m.f.Name(), off, err)
		}
		end, err := m.f.Seek(start, unix.SEEK_HOLE)
		if err != nil {
			return false, fmt.Errorf("seek hole in %s at %d: %w", m.f.Name(), start, err)
		}
		m.start, m.end = min(start, m.size), min(end, m.size)
	}
	if m.start >= m.size {
		return true, nil
	}
	return m.start >= off+int64(n), nil
}
