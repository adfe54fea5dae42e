package exitcode

import (
	"errors"
	"fmt"
)

// The exit statuses, as documented in README.md and docs/cli.md. Scripts and crontabs depend on
// them: never renumber.
const (
	OK            = 0
	Failed        = 1
	Usage         = 2   // bad flags, arguments or specs
	Partial       = 3   // finished, but some VMs, disks or files were skipped
	NotRepository = 10  // no repository (or a newer format) where one was named
	Locked        = 11  // the repository is locked by another process
	WrongPassword = 12  // wrong or missing password or key
	Interrupted   = 130 // SIGINT/SIGTERM; cleanup ran
)

// Permanent reports whether a run that ended with status code can succeed on a retry: usage
// errors, a missing repository and a wrong password stay what they are.
func Permanent(code int) bool {
	return code == Usage || code == NotRepository || code == WrongPassword
}

// Meaning is a few words for a status, for messages and logs ("" for unknown statuses).
func Meaning(code int) string {
	switch code {
	case OK:
		return "ok"
	case Failed:
		return "failed"
	case Usage:
		return "usage error"
	case Partial:
		return "partial"
	case NotRepository:
		return "not a repository"
	case Locked:
		return "repository locked"
	case WrongPassword:
		return "wrong password or key"
	case Interrupted:
		return "interrupted"
	}
	return ""
}

// Error is an error with the exit status it ends the process with. Err may be nil for a status
// whose message was printed already (a --host launch forwards the far side's status).
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return Meaning(e.Code)
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// New returns err carrying code.
func New(code int, err error) error { return &Error{Code: code, Err: err} }

// Usagef is a usage error: bad flags, arguments or specs (exit 2).
func Usagef(format string, args ...any) error {
	return &Error{Code: Usage, Err: fmt.Errorf(format, args...)}
}

// Partialf marks a run that finished but skipped some VMs, disks or files (exit 3).
func Partialf(format string, args ...any) error {
	return &Error{Code: Partial, Err: fmt.Errorf(format, args...)}
}

// Of returns the status an *Error in err's chain carries, and whether there is one.
func Of(err error) (int, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Code, true
	}
	return 0, false
}
