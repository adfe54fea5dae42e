package disk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/snapferry/snapferry/images/repo"
)

// recordMeta puts the permission bits, owner and times of a regular image file into d, so a
// restore can give them back as a folder restore does. A device keeps none.
func recordMeta(f *os.File, d *repo.Disk) {
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return
	}
	d.Mode = st.Mode & 0o7777
	d.UID, d.GID = st.Uid, st.Gid
	d.ModTime = time.Unix(st.Mtim.Unix()).UTC()
	d.AccessTime = time.Unix(st.Atim.Unix()).UTC()
}

// applyMeta gives restored file f (still under its temporary name) d's owner (as root),
// permission bits and times. A snapshot without them (Mode 0) leaves the file as created.
func applyMeta(f *os.File, d repo.Disk) error {
	if d.Mode == 0 {
		return nil
	}
	if os.Geteuid() == 0 {
		if err := f.Chown(int(d.UID), int(d.GID)); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	// After chown, which clears setuid bits.
	if err := unix.Fchmod(int(f.Fd()), d.Mode&0o7777); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	if d.ModTime.IsZero() {
		return nil
	}
	atime := d.AccessTime
	if atime.IsZero() {
		atime = d.ModTime
	}
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(d.ModTime.UnixNano())}
	// utimensat on /proc/self/fd/N would need /proc (ESXi has none): name the file instead.
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, f.Name(), ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// Same reports whether the file at path holds exactly disk d: the same size and, block by
// block, the same bytes (each non-hole block hashed and compared with its id in the block map,
// each hole all zeros). A missing file is not the same; any other error is returned.
func Same(ctx context.Context, bs repo.BlobStore, d repo.Disk, path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	if !fi.Mode().IsRegular() || fi.Size() != d.Size {
		return false, nil
	}
	if err := checkDisk(d); err != nil {
		return false, err
	}
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_SEQUENTIAL)
	buf := make([]byte, d.BlockSize)
	zero := make([]byte, d.BlockSize)
	errDiffers := errors.New("differs")
	err = walkMap(ctx, bs, d, func(i int64, id repo.ID) error {
		b := buf[:blockLen(d, i)]
		if _, err := f.ReadAt(b, i*int64(d.BlockSize)); err != nil {
			return err
		}
		if id.IsZero() {
			if !bytes.Equal(b, zero[:len(b)]) {
				return errDiffers
			}
		} else if bs.BlobID(b) != id {
			return errDiffers
		}
		return nil
	})
	if errors.Is(err, errDiffers) {
		return false, nil
	}
	return err == nil, err
}
