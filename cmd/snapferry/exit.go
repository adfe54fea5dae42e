package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/snapferry/snapferry/cron/exitcode"
	"github.com/snapferry/snapferry/images/overwrite"
	"github.com/snapferry/snapferry/images/repo"
)

// exitCode maps a command's error to the documented exit status. It is the only such mapping:
// an error carries a status only as an *exitcode.Error or as one of the repository's error
// classes below. Anything else is 1, also an error with an ExitCode method (a vim-cmd that exits
// 12 is a failed tool, not a wrong password).
func exitCode(err error, interrupted bool) int {
	if err == nil {
		return exitcode.OK
	}
	code, ok := exitcode.Of(err)
	switch {
	case ok && code == exitcode.Usage:
		return code
	case interrupted, errors.Is(err, context.Canceled):
		return exitcode.Interrupted
	case ok:
		return code
	case errors.Is(err, repo.ErrNotRepository), errors.Is(err, repo.ErrNewerFormat):
		return exitcode.NotRepository
	case errors.Is(err, repo.ErrLocked):
		return exitcode.Locked
	case errors.Is(err, repo.ErrWrongPassword), errors.Is(err, repo.ErrNoPassword):
		return exitcode.WrongPassword
	case errors.Is(err, overwrite.ErrDiffers):
		return exitcode.Partial // a restore kept existing entries that differ (no --overwrite)
	}
	return exitcode.Failed
}

// finish prints a command's error once (and, with --json, an error object on stdout) and
// returns the exit status. c is the command that ran or failed to parse.
func (a *app) finish(c *cobra.Command, err error) int {
	code := exitCode(err, a.interrupted())
	if code == exitcode.OK {
		return code
	}
	var silent *exitcode.Error
	if errors.As(err, &silent) && silent.Err == nil {
		return code // the message was printed already (a --host launch, cron run)
	}
	msg := err.Error()
	if code == exitcode.Interrupted {
		// What failed after a Ctrl-C (a closed SSH link, a cancelled read) is its consequence,
		// not news: say what happened.
		msg = "interrupted; cleanup ran"
	}
	if a.jsonOut {
		json.NewEncoder(a.stdout).Encode(map[string]any{"error": msg, "exit_code": code})
	}
	fmt.Fprintf(a.stderr, "%s: %s\n", commandName(c), msg)
	return code
}

// commandName is "snapferry SUBCOMMAND" for messages.
func commandName(c *cobra.Command) string {
	if c == nil {
		return "snapferry"
	}
	return strings.TrimSpace(c.CommandPath())
}

// usagef is a usage error (exit 2): bad flags, arguments or specs.
func usagef(format string, args ...any) error { return exitcode.Usagef(format, args...) }

// asUsage turns a library's validation error into a usage error.
func asUsage(err error) error { return exitcode.New(exitcode.Usage, err) }
