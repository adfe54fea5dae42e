package main

import (
	"errors"

	"github.com/snapferry/snapferry/images/repo"
)

// libraryCode maps library error classes to exit codes (see exitcode.go for the list).
func libraryCode(err error) int {
	switch {
	case errors.Is(err, repo.ErrNotRepository), errors.Is(err, repo.ErrNewerFormat):
		return exitNotRepo
	case errors.Is(err, repo.ErrLocked):
		return exitLocked
	case errors.Is(err, repo.ErrWrongPassword), errors.Is(err, repo.ErrNoPassword): // security helper
		return exitBadPassword
	}
	return exitFailed
}
