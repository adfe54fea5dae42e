package cron

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ESXi paths that matter for crond (see ../shared/esxi-reference/host-facts.md).
const (
	ESXiCrondPIDFile = "/var/run/crond.pid"
	ESXiBusybox      = "/usr/lib/vmware/busybox/bin/busybox"
)

// CrondRestart restarts busybox crond the way ESXi needs after its table changed:
// `kill $(cat PIDFILE)`, wait for it to go, start it again. Busybox crond reads the table only at
// start on ESXi, so without this the new lines would wait for the next reboot.
type CrondRestart struct {
	PIDFile string
	// Start is the command that starts a new crond (it daemonizes itself).
	Start []string
	Run   CommandRunner
	// Signal sends a signal to a process; nil means syscall.Kill.
	Signal func(pid int, sig syscall.Signal) error
	// ExitWait bounds the wait for the old crond to exit; two crond processes would start every
	// job twice, so the restart fails rather than start a second one.
	ExitWait time.Duration
}

// ESXiCrondRestart returns the restart for this ESXi host: busybox's crond applet on ESXi 7+,
// plain crond on 6.x where that busybox path does not exist.
func ESXiCrondRestart(run CommandRunner) CrondRestart {
	start := []string{ESXiBusybox, "crond"}
	if _, err := os.Stat(ESXiBusybox); err != nil {
		start = []string{"crond"}
	}
	return CrondRestart{PIDFile: ESXiCrondPIDFile, Start: start, Run: run, ExitWait: 10 * time.Second}
}

// IsESXi reports whether this host is ESXi (its busybox or vmware binary is there).
func IsESXi() bool {
	for _, p := range []string{ESXiBusybox, "/bin/vmware"} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// Restart stops the crond named in the PID file (if any is running) and starts a new one.
func (r CrondRestart) Restart(ctx context.Context) error {
	if len(r.Start) == 0 {
		return errors.New("restart crond: no start command configured")
	}
	signal := r.Signal
	if signal == nil {
		signal = syscall.Kill
	}
	b, err := readFileOrEmpty(r.PIDFile)
	if err != nil {
		return fmt.Errorf("restart crond: %w", err)
	}
	if s := strings.TrimSpace(string(b)); s != "" {
		pid, err := strconv.Atoi(s)
		if err != nil || pid <= 1 {
			return fmt.Errorf("restart crond: pid file %s holds %q, not a process id; remove it and start crond by hand", r.PIDFile, s)
		}
		if err := r.stop(ctx, pid, signal); err != nil {
			return err
		}
	}
	if _, err := r.Run(ctx, r.Start[0], r.Start[1:]...); err != nil {
		return fmt.Errorf("restart crond: start: %w", err)
	}
	return nil
}

func (r CrondRestart) stop(ctx context.Context, pid int, signal func(int, syscall.Signal) error) error {
	if err := signal(pid, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil // stale pid file: crond was not running
		}
		return fmt.Errorf("restart crond: stop pid %d from %s: %w", pid, r.PIDFile, err)
	}
	deadline := time.Now().Add(r.ExitWait)
	for {
		if err := signal(pid, 0); errors.Is(err, syscall.ESRCH) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("restart crond: pid %d from %s is still running %s after SIGTERM; not starting a second crond", pid, r.PIDFile, r.ExitWait)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("restart crond: wait for pid %d: %w", pid, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
