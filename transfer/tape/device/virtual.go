package device

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Virtual tape file layout (little endian), documented in docs/tape-format.md:
//
//	header (32 bytes): "SFVTAPE1", u32 version (1), u32 reserved, u64 capacity (0 = unlimited),
//	                   u64 reserved
//	entries until the end of the file (the end of recorded data):
//	  u8 kind (1 record, 2 filemark), u32 length, length bytes of record data
const (
	virtualMagic   = "SFVTAPE1"
	virtualVersion = 1
	virtualHeader  = 32
	entryHeader    = 5
	kindRecord     = 1
	kindFilemark   = 2
)

// Virtual is a file-backed tape. Capacity counts record bytes only: filemarks always fit, so a
// writer that hit ErrEndOfMedium can still close its file.
type Virtual struct {
	f        *os.File
	path     string
	readOnly bool
	capacity int64

	off   int64 // file offset of the entry under the head
	end   int64 // end of recorded data (the file's size)
	used  int64 // record bytes before the head
	file  int64
	block int64
}

var _ Device = (*Virtual)(nil)

// OpenVirtual opens the virtual tape at path, creating it (with o.Capacity) when it is missing
// or empty. The file is locked for this process until Close.
func OpenVirtual(path string, o Options) (*Virtual, error) {
	flag := os.O_RDWR | os.O_CREATE
	if o.ReadOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open virtual tape %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("open virtual tape %s: %w", path, ErrBusy)
		}
		return nil, fmt.Errorf("open virtual tape %s: lock: %w", path, err)
	}
	v := &Virtual{f: f, path: path, readOnly: o.ReadOnly}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open virtual tape %s: %w", path, err)
	}
	if fi.Size() == 0 && !o.ReadOnly {
		if err := v.writeHeader(o.Capacity); err != nil {
			f.Close()
			return nil, err
		}
	} else if err := v.readHeader(fi.Size()); err != nil {
		f.Close()
		return nil, err
	}
	return v, nil
}

func (v *Virtual) writeHeader(capacity int64) error {
	var h [virtualHeader]byte
	copy(h[:], virtualMagic)
	binary.LittleEndian.PutUint32(h[8:], virtualVersion)
	binary.LittleEndian.PutUint64(h[16:], uint64(capacity))
	if _, err := v.f.WriteAt(h[:], 0); err != nil {
		return fmt.Errorf("create virtual tape %s: %w", v.path, err)
	}
	v.capacity, v.off, v.end = capacity, virtualHeader, virtualHeader
	return nil
}

func (v *Virtual) readHeader(size int64) error {
	var h [virtualHeader]byte
	if _, err := v.f.ReadAt(h[:], 0); err != nil || string(h[:8]) != virtualMagic {
		return fmt.Errorf("open virtual tape %s: not a virtual tape (no %s header); give a missing or empty file to create one", v.path, virtualMagic)
	}
	if ver := binary.LittleEndian.Uint32(h[8:]); ver != virtualVersion {
		return fmt.Errorf("open virtual tape %s: format version %d is not supported by this build", v.path, ver)
	}
	v.capacity = int64(binary.LittleEndian.Uint64(h[16:]))
	v.off, v.end = virtualHeader, size
	return nil
}

// Capacity is the tape's size in record bytes (0: unlimited).
func (v *Virtual) Capacity() int64 { return v.capacity }

func (v *Virtual) Name() string { return v.path }

// errTorn marks an entry cut off by the end of the file: a writer died in the middle of it.
var errTorn = errors.New("last entry is cut off (a writer died mid-record)")

// entry reads the header of the entry at the head.
func (v *Virtual) entry() (kind byte, n int64, err error) {
	if v.off >= v.end {
		return 0, 0, ErrEndOfData
	}
	var h [entryHeader]byte
	if v.off+entryHeader > v.end {
		return 0, 0, v.damaged(errTorn)
	}
	if _, err := v.f.ReadAt(h[:], v.off); err != nil {
		return 0, 0, v.damaged(err)
	}
	kind, n = h[0], int64(binary.LittleEndian.Uint32(h[1:]))
	switch {
	case kind == kindFilemark && n == 0:
	case kind == kindRecord && n <= MaxRecord && v.off+entryHeader+n > v.end:
		return 0, 0, v.damaged(errTorn)
	case kind == kindRecord && n <= MaxRecord:
	default:
		return 0, 0, v.damaged(fmt.Errorf("bad entry kind %d length %d", kind, n))
	}
	return kind, n, nil
}

func (v *Virtual) damaged(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("virtual tape %s damaged at byte %d (file %d, record %d): %w", v.path, v.off, v.file, v.block, err)
}

// ReadRecord reads the record under the head into p.
func (v *Virtual) ReadRecord(p []byte) (int, error) {
	kind, n, err := v.entry()
	if err != nil {
		return 0, err
	}
	if kind == kindFilemark {
		v.off += entryHeader
		v.file++
		v.block = 0
		return 0, ErrFilemark
	}
	if n > int64(len(p)) {
		return 0, fmt.Errorf("read %s file %d record %d: %d bytes: %w", v.path, v.file, v.block, n, ErrTooLarge)
	}
	if _, err := v.f.ReadAt(p[:n], v.off+entryHeader); err != nil {
		return 0, v.damaged(err)
	}
	v.off += entryHeader + n
	v.used += n
	v.block++
	return int(n), nil
}

func (v *Virtual) write(kind byte, p []byte) error {
	if v.readOnly {
		return fmt.Errorf("write %s: opened read-only", v.path)
	}
	buf := make([]byte, entryHeader+len(p))
	buf[0] = kind
	binary.LittleEndian.PutUint32(buf[1:], uint32(len(p)))
	copy(buf[entryHeader:], p)
	if _, err := v.f.WriteAt(buf, v.off); err != nil {
		return fmt.Errorf("write %s file %d record %d: %w", v.path, v.file, v.block, err)
	}
	next := v.off + int64(len(buf))
	if v.end > next {
		// Writing in the middle of a tape loses everything after it, as on a real drive.
		if err := v.f.Truncate(next); err != nil {
			return fmt.Errorf("write %s: truncate after the head: %w", v.path, err)
		}
	}
	v.off, v.end = next, next
	return nil
}

// WriteRecord appends one record at the head, or returns ErrEndOfMedium when it does not fit.
func (v *Virtual) WriteRecord(p []byte) error {
	if len(p) == 0 || len(p) > MaxRecord {
		return fmt.Errorf("write %s: record of %d bytes (want 1..%d)", v.path, len(p), MaxRecord)
	}
	if v.capacity > 0 && v.used+int64(len(p)) > v.capacity {
		return fmt.Errorf("write %s file %d record %d: %w", v.path, v.file, v.block, ErrEndOfMedium)
	}
	if err := v.write(kindRecord, p); err != nil {
		return err
	}
	v.used += int64(len(p))
	v.block++
	return nil
}

// WriteFilemark ends the current file and makes what was written durable (as a drive flushes
// its buffer at a filemark).
func (v *Virtual) WriteFilemark() error {
	if err := v.write(kindFilemark, nil); err != nil {
		return err
	}
	v.file++
	v.block = 0
	if err := v.f.Sync(); err != nil {
		return fmt.Errorf("write filemark on %s: sync: %w", v.path, err)
	}
	return nil
}

// SkipFiles moves past n filemarks. Reaching the end of data first returns ErrEndOfData with
// the head at the end.
func (v *Virtual) SkipFiles(n int) error {
	for n > 0 {
		kind, size, err := v.entry()
		if err != nil {
			if errors.Is(err, ErrEndOfData) {
				return fmt.Errorf("skip to file %d of %s: %w", v.file+int64(n), v.path, err)
			}
			return err
		}
		if kind == kindFilemark {
			v.off += entryHeader
			v.file++
			v.block = 0
			n--
			continue
		}
		v.off += entryHeader + size
		v.used += size
		v.block++
	}
	return nil
}

// SeekEnd moves to the end of recorded data. A torn last entry is not data: the next write
// replaces it, as a drive overwrites what follows the head.
func (v *Virtual) SeekEnd() error {
	for {
		err := v.SkipFiles(1)
		if errors.Is(err, ErrEndOfData) {
			return nil
		}
		if errors.Is(err, errTorn) {
			v.end = v.off
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (v *Virtual) Rewind() error {
	v.off, v.used, v.file, v.block = virtualHeader, 0, 0, 0
	return nil
}

func (v *Virtual) Status() (Status, error) {
	return Status{
		File: v.file, Block: v.block,
		BOT:            v.off == virtualHeader,
		EOD:            v.off >= v.end,
		EOM:            v.capacity > 0 && v.used >= v.capacity,
		WriteProtected: v.readOnly,
		Online:         true,
	}, nil
}

// Close syncs and unlocks the file.
func (v *Virtual) Close() error {
	var err error
	if !v.readOnly {
		err = v.f.Sync()
	}
	if cerr := v.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("close virtual tape %s: %w", v.path, err)
	}
	return nil
}
