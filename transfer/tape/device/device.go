package device

import (
	"errors"
	"fmt"
	"os"
)

// Errors of the device contract (see the package doc).
var (
	ErrFilemark    = errors.New("filemark")
	ErrEndOfData   = errors.New("end of recorded data")
	ErrEndOfMedium = errors.New("end of medium: the tape is full")
	ErrBusy        = errors.New("device is in use by another process")
	ErrTooLarge    = errors.New("record larger than the read buffer")
)

// MaxRecord bounds one record: the st driver's variable-block limit on common HBAs is far
// higher, but a damaged virtual tape must not make a reader allocate gigabytes.
const MaxRecord = 16 << 20

// Status is where the head is and what the drive knows about the medium.
type Status struct {
	File           int64 // filemarks passed since the beginning of the tape
	Block          int64 // record number within the current file
	BOT            bool  // at the beginning of the tape
	EOD            bool  // at the end of recorded data
	EOM            bool  // past the early-warning point or at the end of the medium
	WriteProtected bool
	Online         bool
}

// Device is a tape drive (or a file that behaves like one). Not safe for concurrent use.
type Device interface {
	// Name is the path the device was opened from, for messages.
	Name() string
	ReadRecord(p []byte) (int, error)
	WriteRecord(p []byte) error
	WriteFilemark() error
	SkipFiles(n int) error
	SeekEnd() error
	Rewind() error
	Status() (Status, error)
	Close() error
}

// Options for Open.
type Options struct {
	// Capacity is the size (bytes of records) of a new virtual tape; 0 is unlimited. It is
	// recorded in the file and ignored for drives and for existing virtual tapes.
	Capacity int64
	// ReadOnly opens for reading only (a drive with a write-protected cartridge still opens).
	ReadOnly bool
}

// Open opens a drive (a character device, e.g. /dev/nst0) or a virtual tape (a regular file,
// created empty when missing and not ReadOnly).
func Open(path string, o Options) (Device, error) {
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.Mode()&os.ModeCharDevice != 0:
		return openDrive(path, o)
	case err == nil && !fi.Mode().IsRegular():
		return nil, fmt.Errorf("open tape %s: neither a tape drive (character device) nor a regular file for a virtual tape", path)
	case err != nil && !(errors.Is(err, os.ErrNotExist) && !o.ReadOnly):
		return nil, fmt.Errorf("open tape %s: %w", path, err)
	}
	return OpenVirtual(path, o)
}
