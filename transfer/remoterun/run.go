package remoterun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// DefaultGrace is how long a cancelled remote job gets to clean up before the session is cut.
const DefaultGrace = 60 * time.Second

// Options for Run.
type Options struct {
	Stdout io.Writer // remote stdout, as it arrives (nil: discarded)
	Stderr io.Writer // remote stderr, as it arrives (nil: discarded)
	Grace  time.Duration
}

// Result is how the remote job ended.
type Result struct {
	ExitStatus int    // the remote status; 128+N when killed by signal N
	Signal     string // the signal name when the job was killed by a signal, like "TERM"
	Cancelled  bool   // the local context ended and the job was asked to stop
}

// ErrCancelled wraps the context error when the job was stopped from this side.
var ErrCancelled = errors.New("remote job cancelled")

// Run runs command on conn and waits for it. A remote job that ran and exited (any status) gives
// a nil error; the error is for jobs whose end is unknown (connection lost, Grace exceeded) and,
// wrapping ErrCancelled and the context error, for cancelled ones.
func Run(ctx context.Context, conn *ssh.Client, command string, opts Options) (Result, error) {
	sess, err := conn.NewSession()
	if err != nil {
		return Result{}, fmt.Errorf("open ssh session for %q: %w", command, err)
	}
	defer sess.Close()
	sess.Stdout = orDiscard(opts.Stdout)
	sess.Stderr = orDiscard(opts.Stderr)
	stdin, err := sess.StdinPipe()
	if err != nil {
		return Result{}, fmt.Errorf("remote stdin for %q: %w", command, err)
	}
	if err := sess.Start(command); err != nil {
		return Result{}, fmt.Errorf("start remote %q: %w", command, err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()

	var waitErr error
	res := Result{}
	select {
	case waitErr = <-done:
	case <-ctx.Done():
		res.Cancelled = true
		_ = sess.Signal(ssh.SIGTERM)
		_ = stdin.Close()
		grace := opts.Grace
		if grace <= 0 {
			grace = DefaultGrace
		}
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case waitErr = <-done:
		case <-timer.C:
			_ = sess.Close()
			return res, fmt.Errorf("remote %q did not stop within %s of cancellation; "+
				"its cleanup may not have finished: %w: %w", command, grace, ErrCancelled, ctx.Err())
		}
	}
	var exitErr *ssh.ExitError
	switch {
	case waitErr == nil:
	case errors.As(waitErr, &exitErr):
		res.ExitStatus = exitErr.ExitStatus()
		if sig := exitErr.Signal(); sig != "" {
			res.Signal = sig
			res.ExitStatus = 128 + signalNumber(sig)
		}
	default:
		return res, fmt.Errorf("remote %q: connection lost before it reported an exit status: %w", command, waitErr)
	}
	if res.Cancelled {
		return res, fmt.Errorf("remote %q stopped with status %d: %w: %w", command, res.ExitStatus, ErrCancelled, ctx.Err())
	}
	return res, nil
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// signalNumber maps the RFC 4254 signal names to Linux numbers (the ones snapferry hosts use).
func signalNumber(name string) int {
	n := map[string]int{"HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "ABRT": 6, "FPE": 8, "KILL": 9,
		"USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15}[name]
	if n == 0 {
		return 127 // unknown: still a "killed" status above 128
	}
	return n
}

// ShellQuote joins args into one POSIX shell command line, each argument single-quoted when it
// holds anything a shell would interpret. The remote side runs commands through the login shell.
func ShellQuote(args ...string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,@%+") == "" {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}
