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

	"github.com/snapferry/snapferry/cron/exitcode"
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
	meaning := ""
	if m := exitcode.Meaning(e.Code); m != "" {
		meaning = " (" + m + ")"
	}
	return fmt.Sprintf("snapferry %s exited with status %d%s", strings.Join(e.Args, " "), e.Code, meaning)
}

// Permanent reports whether the exit status says retrying cannot help (exitcode.Permanent).
func (e *ExitError) Permanent() bool { return exitcode.Permanent(e.Code) }

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
