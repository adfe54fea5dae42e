//go:build linux

package device

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Linux <sys/mtio.h>. golang.org/x/sys does not carry these, so they are spelled out here; the
// ioctl numbers are computed from the struct sizes so they are right on 32- and 64-bit.
const (
	mtFSF    = 1  // forward space over filemarks
	mtWEOF   = 5  // write filemarks
	mtREW    = 6  // rewind
	mtEOM    = 12 // go to the end of recorded media
	mtSETBLK = 20 // set block length (0: variable)

	gmtEOF    = 0x80000000
	gmtBOT    = 0x40000000
	gmtEOT    = 0x20000000
	gmtEOD    = 0x08000000
	gmtWRPROT = 0x04000000
	gmtONLINE = 0x01000000
)

// mtop is struct mtop { short mt_op; int mt_count; }.
type mtop struct {
	op    int16
	_     int16
	count int32
}

// mtget is struct mtget { long mt_type, mt_resid, mt_dsreg, mt_gstat, mt_erreg;
// __kernel_daddr_t mt_fileno, mt_blkno; } (daddr_t is int).
type mtget struct {
	typ, resid, dsreg, gstat, erreg int
	fileno, blkno                   int32
}

func (g mtget) has(bit uint) bool { return uint(g.gstat)&bit != 0 }

func ioc(dir, nr, size uintptr) uintptr { return dir<<30 | size<<16 | 'm'<<8 | nr }

var (
	mtiocTop = ioc(1, 1, unsafe.Sizeof(mtop{}))  // _IOW('m', 1, struct mtop)
	mtiocGet = ioc(2, 2, unsafe.Sizeof(mtget{})) // _IOR('m', 2, struct mtget)
)

// Drive is a Linux st tape drive, used in variable-block mode so each read or write is one
// record of the size the tape format chose.
type Drive struct {
	f    *os.File
	path string
}

var _ Device = (*Drive)(nil)

func openDrive(path string, o Options) (Device, error) {
	flag := os.O_RDWR
	if o.ReadOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		if errors.Is(err, unix.EBUSY) {
			return nil, fmt.Errorf("open tape drive %s: %w", path, ErrBusy)
		}
		if errors.Is(err, unix.EROFS) || errors.Is(err, unix.EACCES) && !o.ReadOnly {
			return nil, fmt.Errorf("open tape drive %s for writing: %w (write-protected cartridge?)", path, err)
		}
		return nil, fmt.Errorf("open tape drive %s: %w", path, err)
	}
	d := &Drive{f: f, path: path}
	if err := d.op(mtSETBLK, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("open tape drive %s: set variable block mode: %w", path, err)
	}
	return d, nil
}

func (d *Drive) Name() string { return d.path }

func (d *Drive) op(op int16, count int32) error {
	m := mtop{op: op, count: count}
	raw, err := d.f.SyscallConn()
	if err != nil {
		return err
	}
	var errno unix.Errno
	if cerr := raw.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, mtiocTop, uintptr(unsafe.Pointer(&m)))
	}); cerr != nil {
		return cerr
	}
	if errno != 0 {
		return errno
	}
	return nil
}

func (d *Drive) get() (mtget, error) {
	var g mtget
	raw, err := d.f.SyscallConn()
	if err != nil {
		return g, err
	}
	var errno unix.Errno
	if cerr := raw.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, mtiocGet, uintptr(unsafe.Pointer(&g)))
	}); cerr != nil {
		return g, cerr
	}
	if errno != 0 {
		return g, errno
	}
	return g, nil
}

// ReadRecord reads one record. st returns 0 bytes at a filemark (and moves past it) and at the
// end of data (blank check, EIO on some drives); the status tells them apart.
func (d *Drive) ReadRecord(p []byte) (int, error) {
	n, err := unix.Read(int(d.f.Fd()), p)
	if n > 0 && err == nil {
		return n, nil
	}
	if errors.Is(err, unix.ENOMEM) || errors.Is(err, unix.EOVERFLOW) {
		return 0, fmt.Errorf("read %s: %w", d.path, ErrTooLarge)
	}
	g, gerr := d.get()
	if gerr == nil && g.has(gmtEOD) {
		return 0, ErrEndOfData
	}
	if err != nil {
		if errors.Is(err, unix.EIO) && gerr == nil && !g.has(gmtEOF) {
			return 0, ErrEndOfData // blank check past the last filemark
		}
		return 0, fmt.Errorf("read %s: %w", d.path, err)
	}
	return 0, ErrFilemark
}

// WriteRecord writes one record; ENOSPC is the drive's early warning or physical end.
func (d *Drive) WriteRecord(p []byte) error {
	n, err := unix.Write(int(d.f.Fd()), p)
	switch {
	case errors.Is(err, unix.ENOSPC) || err == nil && n < len(p):
		return fmt.Errorf("write %s: %w", d.path, ErrEndOfMedium)
	case err != nil:
		return fmt.Errorf("write %s: %w", d.path, err)
	}
	return nil
}

func (d *Drive) WriteFilemark() error {
	if err := d.op(mtWEOF, 1); err != nil {
		return fmt.Errorf("write filemark on %s: %w", d.path, err)
	}
	return nil
}

func (d *Drive) SkipFiles(n int) error {
	if n <= 0 {
		return nil
	}
	if err := d.op(mtFSF, int32(n)); err != nil {
		if errors.Is(err, unix.EIO) {
			return fmt.Errorf("skip %d files on %s: %w", n, d.path, ErrEndOfData)
		}
		return fmt.Errorf("skip %d files on %s: %w", n, d.path, err)
	}
	return nil
}

func (d *Drive) SeekEnd() error {
	if err := d.op(mtEOM, 1); err != nil {
		return fmt.Errorf("space to end of data on %s: %w", d.path, err)
	}
	return nil
}

func (d *Drive) Rewind() error {
	if err := d.op(mtREW, 1); err != nil {
		return fmt.Errorf("rewind %s: %w", d.path, err)
	}
	return nil
}

func (d *Drive) Status() (Status, error) {
	g, err := d.get()
	if err != nil {
		return Status{}, fmt.Errorf("status of %s: %w", d.path, err)
	}
	return Status{
		File: int64(g.fileno), Block: int64(g.blkno),
		BOT: g.has(gmtBOT), EOD: g.has(gmtEOD), EOM: g.has(gmtEOT),
		WriteProtected: g.has(gmtWRPROT), Online: g.has(gmtONLINE),
	}, nil
}

func (d *Drive) Close() error {
	if err := d.f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", d.path, err)
	}
	return nil
}
