package tree

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// changedWhileRead compares a file just read through fd with what its lstat said before (size,
// mtime) and what was read, and records a warning when it changed in between: a log being
// appended to is stored up to the size seen (small files) or to the end found (large ones),
// a consistent prefix but not the file as it is when the backup ends. One fstat per file. A
// file whose size stays what lstat said but that delivers fewer bytes (sysfs, procfs) is not
// reported: it did not change, it never had that many.
func (a *archiver) changedWhileRead(fd int, path string, size, read int64, mtime time.Time) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return // the read succeeded; a failing fstat tells nothing about the content
	}
	now := st.Size
	var msg string
	switch {
	case now > size:
		msg = fmt.Sprintf("grew from %d to %d bytes while being read: the snapshot holds its first %d bytes", size, now, read)
	case now < size:
		msg = fmt.Sprintf("shrank from %d to %d bytes while being read: the snapshot holds the %d bytes read", size, now, read)
	case !time.Unix(st.Mtim.Sec, st.Mtim.Nsec).Equal(mtime):
		msg = "was modified while being read: the snapshot may mix its old and new content"
	default:
		return
	}
	a.mu.Lock()
	a.warnings = append(a.warnings, FileError{Path: path, Err: errors.New(msg)})
	a.mu.Unlock()
}
