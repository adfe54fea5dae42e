package repo

import (
	"context"
	"errors"
	"fmt"

	"github.com/snapferry/snapferry/images/store"
)

// Error classes. The CLI maps them to exit codes (ErrNotRepository and ErrNewerFormat → 10,
// ErrLocked → 11, ErrWrongPassword and ErrNoPassword → 12, everything else → 1); callers test them with errors.Is.
var (
	// ErrNotRepository: the location has no config file.
	ErrNotRepository = errors.New("not a snapferry repository")
	// ErrNewerFormat: the config names a format version this build does not know. The error text
	// (FormatError) tells the user to upgrade.
	ErrNewerFormat = errors.New("repository format is newer than this snapferry supports")
	// ErrLocked: another process holds a conflicting lock (the LockError names it). Retryable.
	ErrLocked = errors.New("repository is locked")
	// ErrBlobNotFound: a blob is in no index.
	ErrBlobNotFound = errors.New("blob not found in the repository index")
	// ErrCorrupt: stored bytes do not match their id, or a file cannot be decoded.
	ErrCorrupt = errors.New("repository data is damaged")
	// ErrSnapshotNotFound and ErrAmbiguousSnapshot come from FindSnapshot.
	ErrSnapshotNotFound  = errors.New("no matching snapshot")
	ErrAmbiguousSnapshot = errors.New("snapshot reference is ambiguous")
	// ErrWrongPassword: no key file of an encrypted repository opens with the password given
	// (exit code 12). Nothing has been written when it is returned.
	ErrWrongPassword = errors.New("wrong repository password")
	// ErrNoPassword: the repository is encrypted and no password was given (exit code 12).
	ErrNoPassword = errors.New("repository password required")
	// ErrStoreFull is store.ErrNoSpace, re-exported so callers of repo need not import store.
	ErrStoreFull = store.ErrNoSpace
)

// FormatError is returned (matching ErrNewerFormat) when the repository's format version is
// higher than FormatVersion.
type FormatError struct {
	Version int
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("repository format %d is newer than this snapferry supports (%d); upgrade snapferry",
		e.Version, FormatVersion)
}

func (e *FormatError) Is(target error) bool { return target == ErrNewerFormat }

// IsPermanent reports errors that retrying the same run cannot fix: a wrong or too new repository,
// a full store, damaged data, a bad snapshot reference, or a cancelled context. Lock conflicts and
// I/O or network errors are not permanent: a cron retry may succeed.
func IsPermanent(err error) bool {
	for _, p := range []error{ErrNotRepository, ErrNewerFormat, ErrWrongPassword, ErrNoPassword, store.ErrNoSpace, ErrCorrupt,
		ErrBlobNotFound, ErrSnapshotNotFound, ErrAmbiguousSnapshot, context.Canceled} {
		if errors.Is(err, p) {
			return true
		}
	}
	return false
}
