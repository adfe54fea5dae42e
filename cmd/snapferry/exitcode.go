package main

import (
	"context"
	"errors"
	"fmt"
)

// Exit codes, as documented in the README and shared/cli.md. Scripts depend on them.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitPartial     = 3
	exitNotRepo     = 10
	exitLocked      = 11
	exitBadPassword = 12
	exitInterrupted = 130
)

// usageError marks bad flags, arguments or specs (exit 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// partialError marks a run that finished but skipped some VMs, disks or files (exit 3).
type partialError struct{ msg string }

func (e partialError) Error() string { return e.msg }

// exitClass is implemented by library errors that know their exit class; it keeps the mapping
// in one place without cmd importing every sentinel.
type exitClass interface{ ExitCode() int }

// codeFor maps an error to the documented exit code. Only cmd does this mapping.
func codeFor(a *app, err error) int {
	if err == nil {
		return exitOK
	}
	var ue usageError
	var pe partialError
	var ec exitClass
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case a != nil && a.interrupted():
		return exitInterrupted
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.As(err, &pe):
		return exitPartial
	case errors.As(err, &ec):
		return ec.ExitCode()
	}
	return libraryCode(err)
}
