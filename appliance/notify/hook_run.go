package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// EventData is what a hook learns about an event, through environment variables:
//
//	SNAPFERRY_EVENT     the event name (job.failure...)
//	SNAPFERRY_JOB_ID    the job id
//	SNAPFERRY_JOB_NAME  the cron job name, if any
//	SNAPFERRY_HOST      this host
//	SNAPFERRY_RESULT    success, partial or failure (job.* end events)
//	SNAPFERRY_ATTEMPT   the attempt number (1 without retries)
//	SNAPFERRY_<KEY>     each Details entry, KEY upper-cased with other characters as '_'
//	                    (e.g. SNAPFERRY_VM, SNAPFERRY_ERROR, SNAPFERRY_SNAPSHOT, SNAPFERRY_FREE_BYTES)
type EventData struct {
	Event   Event
	JobID   string
	JobName string
	Host    string
	Result  Result
	Attempt int
	Details map[string]string
}

// Env returns the SNAPFERRY_* variables for the event, sorted.
func (e EventData) Env() []string {
	env := []string{"SNAPFERRY_EVENT=" + string(e.Event)}
	add := func(k, v string) {
		if v != "" {
			env = append(env, "SNAPFERRY_"+k+"="+v)
		}
	}
	add("JOB_ID", e.JobID)
	add("JOB_NAME", e.JobName)
	add("HOST", e.Host)
	add("RESULT", string(e.Result))
	if e.Attempt > 0 {
		add("ATTEMPT", strconv.Itoa(e.Attempt))
	}
	for k, v := range e.Details {
		add(envKey(k), v)
	}
	sort.Strings(env[1:])
	return env
}

func envKey(k string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, k)
}

// HookRunner fires hooks. The zero Timeout means one minute.
type HookRunner struct {
	Hooks   []Hook
	Timeout time.Duration
	// Log receives each hook's output, line by line, prefixed with the event and the command.
	Log io.Writer
	// Shell runs the command as Shell -c COMMAND; "" means /bin/sh.
	Shell string
}

// maxHookOutput bounds what is kept of one hook's output: a chatty hook must not fill the log
// (on ESXi, a ramdisk).
const maxHookOutput = 64 << 10

// Fire runs every hook registered for ev.Event, one after another, and returns one warning per
// hook that failed, timed out or could not start. It never returns an error: a hook must not
// change the outcome of a backup.
func (h HookRunner) Fire(ctx context.Context, ev EventData) []error {
	var warnings []error
	for _, hook := range h.Hooks {
		if !slices.Contains(hook.Events, ev.Event) {
			continue
		}
		if err := h.run(ctx, hook, ev); err != nil {
			warnings = append(warnings, err)
			h.logf("hook %s %q: warning: %v\n", ev.Event, hook.Command, err)
		}
	}
	return warnings
}

func (h HookRunner) logf(format string, args ...any) {
	if h.Log != nil {
		fmt.Fprintf(h.Log, format, args...)
	}
}

func (h HookRunner) run(ctx context.Context, hook Hook, ev EventData) error {
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	shell := h.Shell
	if shell == "" {
		shell = "/bin/sh"
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out := &limitedBuffer{max: maxHookOutput}
	cmd := exec.CommandContext(ctx, shell, "-c", hook.Command)
	cmd.Env = append(os.Environ(), ev.Env()...)
	cmd.Stdin = nil
	cmd.Stdout = out
	cmd.Stderr = out
	// Its own process group, so a timeout kills what the hook started too (a hanging
	// `ssh ... | mail` pipeline), not just the shell.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A background child that keeps the output pipe open must not hold us past this.
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	for _, line := range strings.SplitAfter(out.String(), "\n") {
		if line != "" {
			h.logf("hook %s %q: %s", ev.Event, hook.Command, strings.TrimSuffix(line, "\n")+"\n")
		}
	}
	if out.dropped > 0 {
		h.logf("hook %s %q: (%d more bytes of output dropped)\n", ev.Event, hook.Command, out.dropped)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("hook %q for %s: killed after %s timeout", hook.Command, ev.Event, timeout)
	case errors.Is(err, exec.ErrWaitDelay):
		// The hook exited but something it started still holds the output pipe: kill that
		// group too, or it would outlive the job unseen. A hook that wants to leave something
		// running detaches it from the output (cmd >/dev/null 2>&1 &).
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		return fmt.Errorf("hook %q for %s: left a process holding its output open (killed it)", hook.Command, ev.Event)
	}
	return fmt.Errorf("hook %q for %s: %w", hook.Command, ev.Event, err)
}

// limitedBuffer keeps the first max bytes written and counts the rest.
type limitedBuffer struct {
	buf     bytes.Buffer
	max     int
	dropped int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	room := b.max - b.buf.Len()
	if room < len(p) {
		if room > 0 {
			b.buf.Write(p[:room])
		}
		b.dropped += len(p) - max(room, 0)
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *limitedBuffer) String() string { return b.buf.String() }
