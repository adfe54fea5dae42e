package cron

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// ErrSuspended is returned (wrapped) by RunnableJob while scheduling is suspended: `cron run`
// then logs that it skipped and exits 0, so crond sees no failure.
var ErrSuspended = errors.New("scheduling is suspended (snapferry cron resume ends that)")

// RunnableJob loads the named job for `cron run`, refusing while scheduling is suspended.
func (s *Store) RunnableJob(ctx context.Context, name string) (Job, error) {
	f, err := s.Load(ctx)
	if err != nil {
		return Job{}, err
	}
	j, ok := f.Job(name)
	if !ok {
		return Job{}, fmt.Errorf("run job %s: %w in %s (see snapferry cron list)", name, ErrJobNotFound, s.path)
	}
	if f.Suspended {
		return j, fmt.Errorf("run job %s: %w", name, ErrSuspended)
	}
	return j, nil
}

// ExitError is a snapferry child process that ended with a non-zero exit status.
type ExitError struct {
	Args []string
	Code int
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("snapferry %s exited with status %d%s", strings.Join(e.Args, " "), e.Code, exitMeaning(e.Code))
}

// Permanent reports whether the exit status (see the CLI's exit status table) says retrying
// cannot help: usage error (2), not a repository (10), wrong password or key (12).
func (e *ExitError) Permanent() bool {
	return e.Code == 2 || e.Code == 10 || e.Code == 12
}

func exitMeaning(code int) string {
	switch code {
	case 1:
		return " (failed)"
	case 2:
		return " (usage error)"
	case 3:
		return " (partial)"
	case 10:
		return " (repository not found)"
	case 11:
		return " (repository locked)"
	case 12:
		return " (wrong password or key)"
	case 130:
		return " (interrupted)"
	}
	return ""
}

// ChildStopGrace is how long an interrupted run lets its child clean up (remove VM snapshots,
// unlock the repository, leave the registry) after SIGTERM before it is killed.
const ChildStopGrace = 2 * time.Minute

// Subcommand runs `binary args...` (the job's snapferry command in a child process, so each
// attempt starts clean) with env added to this process's environment and its output going to
// out. A non-zero exit is an *ExitError, which the retry loop classifies through its Permanent
// method. When ctx ends the child gets SIGTERM and ChildStopGrace to clean up, as every job
// command handles it, not an instant SIGKILL that would leave a VM snapshot behind.
func Subcommand(ctx context.Context, binary string, args, env []string, out io.Writer) error {
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = ChildStopGrace
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() > 0 {
		return &ExitError{Args: args, Code: ee.ExitCode()}
	}
	if err != nil {
		return fmt.Errorf("run snapferry %s: %w", strings.Join(args, " "), err)
	}
	return nil
}
