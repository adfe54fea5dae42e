package wire

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/snapferry/snapferry/images/store"
)

// Class sorts a failure by what the caller can do about it. The numbers are part of the protocol.
type Class uint8

// Error classes. ClassOK (0) is success and never appears in a RemoteError.
const (
	ClassOK       Class = 0
	ClassNotExist Class = 1 // the named file or folder is missing
	ClassExist    Class = 2 // the file exists and may not be overwritten
	ClassNoSpace  Class = 3 // the far side is full; permanent for this run
	ClassRefused  Class = 4 // permission denied, outside the root, append-only, unknown op
	ClassOther    Class = 5 // anything else (I/O errors, bugs)
	classMax            = ClassOther
)

func (c Class) String() string {
	switch c {
	case ClassOK:
		return "ok"
	case ClassNotExist:
		return "not exist"
	case ClassExist:
		return "exist"
	case ClassNoSpace:
		return "no space"
	case ClassRefused:
		return "refused"
	case ClassOther:
		return "error"
	}
	return fmt.Sprintf("class-%d", uint8(c))
}

// ErrRefused is matched (errors.Is) by RemoteErrors of ClassRefused.
var ErrRefused = errors.New("refused by the server")

// RemoteError is a failure reported by the peer. errors.Is maps its class back to the store
// errors, so code above a remote store tests errors exactly as it would for a local one.
type RemoteError struct {
	Class   Class
	Message string
}

func (e *RemoteError) Error() string { return "server: " + e.Message }

// Is matches the store error of the class.
func (e *RemoteError) Is(target error) bool {
	switch e.Class {
	case ClassNotExist:
		return target == store.ErrNotExist
	case ClassExist:
		return target == store.ErrExist
	case ClassNoSpace:
		return target == store.ErrNoSpace
	case ClassRefused:
		return target == ErrRefused || target == fs.ErrPermission
	}
	return false
}

// ClassOf sorts a local error into a class, for the side that reports it.
func ClassOf(err error) Class {
	switch {
	case err == nil:
		return ClassOK
	case errors.Is(err, store.ErrNoSpace), errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return ClassNoSpace
	case errors.Is(err, fs.ErrNotExist):
		return ClassNotExist
	case errors.Is(err, fs.ErrExist):
		return ClassExist
	case errors.Is(err, fs.ErrPermission), errors.Is(err, ErrRefused):
		return ClassRefused
	}
	return ClassOther
}

// NewRemoteError makes the RemoteError that reports err to the peer.
func NewRemoteError(err error) *RemoteError {
	var re *RemoteError
	if errors.As(err, &re) {
		return re
	}
	return &RemoteError{Class: ClassOf(err), Message: truncate(err.Error(), MaxString)}
}

func encodeRemoteError(e *Encoder, re *RemoteError) {
	e.B = append(e.B, byte(re.Class))
	e.String(truncate(re.Message, MaxString))
}

func decodeRemoteError(d *Decoder) *RemoteError {
	if d.err != nil {
		return nil
	}
	if len(d.b) < 1 {
		d.fail("missing error class")
		return nil
	}
	c := Class(d.b[0])
	d.b = d.b[1:]
	if c == ClassOK || c > classMax {
		d.fail("bad error class %d", c)
		return nil
	}
	return &RemoteError{Class: c, Message: d.String()}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
