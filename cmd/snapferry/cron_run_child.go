package main

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

	"github.com/snapferry/snapferry/cron"
)

// childStopGrace is how long an interrupted `cron run` lets its child clean up (remove VM
// snapshots, unlock the repository, leave the registry) before it is killed.
const childStopGrace = 2 * time.Minute

// childExec runs one attempt of a job: `binary args...` with env added, output into the job log.
// It differs from cron.Subcommand in how it stops: when `cron run` is interrupted (SIGTERM from
// a person or a shutdown, SIGINT), the child gets SIGTERM and time to clean up, as every job
// command handles it, rather than an instant SIGKILL that would leave a VM snapshot behind.
func childExec(binary string) func(ctx context.Context, args, env []string, out io.Writer) error {
	return func(ctx context.Context, args, env []string, out io.Writer) error {
		cmd := exec.CommandContext(ctx, binary, args...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdout, cmd.Stderr = out, out
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = childStopGrace
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() > 0 {
			return &cron.ExitError{Args: args, Code: ee.ExitCode()}
		}
		if err != nil {
			return fmt.Errorf("run snapferry %s: %w", strings.Join(args, " "), err)
		}
		return nil
	}
}
