package notify

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron/testkit"
)

func TestParseHook(t *testing.T) {
	h, err := ParseHook("job.failure,job.partial:logger -t snapferry \"failed: $SNAPFERRY_JOB_ID\" && curl http://x:8080/")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Events) != 2 || h.Events[0] != JobFailure || h.Events[1] != JobPartial || h.Command != `logger -t snapferry "failed: $SNAPFERRY_JOB_ID" && curl http://x:8080/` {
		t.Fatalf("parsed %+v", h)
	}
	if h.String() != "job.failure,job.partial:"+h.Command {
		t.Fatalf("String %q", h.String())
	}
	for spec, msg := range map[string]string{
		"job.failure":         "EVENT[,EVENT]:COMMAND",
		"job.failure:   ":     "EVENT[,EVENT]:COMMAND",
		"job.explode:echo hi": "unknown event \"job.explode\"; known: job.start",
		":echo":               "unknown event",
	} {
		if _, err := ParseHook(spec); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: want %q, got %v", spec, msg, err)
		}
	}
	if _, err := ParseHooks([]string{"job.start:true", "bad"}); err == nil {
		t.Error("ParseHooks must fail on a bad entry")
	}
}

func TestHookGetsEnvironmentAndOutputIsLogged(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	hooks, err := ParseHooks([]string{
		"job.failure,job.partial:env | grep ^SNAPFERRY_ | sort > '" + envFile + "'; echo hook says hi; echo to stderr >&2",
		"job.success:echo must not run for a failure > '" + filepath.Join(dir, "wrong") + "'",
	})
	if err != nil {
		t.Fatal(err)
	}
	var log testkit.SyncBuffer
	r := HookRunner{Hooks: hooks, Log: &log, Timeout: 10 * time.Second}
	warnings := r.Fire(context.Background(), EventData{
		Event: JobFailure, JobID: "20261122-0200-7f3a", JobName: "nightly", Host: "esx01", Result: Failure, Attempt: 2,
		Details: map[string]string{"vm": "db01", "error": "disk locked", "free-bytes": "1024"},
	})
	if len(warnings) != 0 {
		t.Fatalf("warnings: %v", warnings)
	}
	env, _ := os.ReadFile(envFile)
	want := strings.Join([]string{
		"SNAPFERRY_ATTEMPT=2", "SNAPFERRY_ERROR=disk locked", "SNAPFERRY_EVENT=job.failure", "SNAPFERRY_FREE_BYTES=1024",
		"SNAPFERRY_HOST=esx01", "SNAPFERRY_JOB_ID=20261122-0200-7f3a", "SNAPFERRY_JOB_NAME=nightly",
		"SNAPFERRY_RESULT=failure", "SNAPFERRY_VM=db01",
	}, "\n") + "\n"
	if string(env) != want {
		t.Fatalf("hook environment:\n%s\nwant:\n%s", env, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "wrong")); !os.IsNotExist(err) {
		t.Fatal("a job.success hook ran for job.failure")
	}
	for _, line := range []string{"hook job.failure \"env | grep", ": hook says hi\n", ": to stderr\n"} {
		if !strings.Contains(log.String(), line) {
			t.Errorf("log lacks %q:\n%s", line, log.String())
		}
	}
}

func TestFailingHookIsOnlyAWarning(t *testing.T) {
	var log testkit.SyncBuffer
	hooks, _ := ParseHooks([]string{"job.failure:echo broken; exit 7", "job.failure:echo second ran"})
	warnings := HookRunner{Hooks: hooks, Log: &log}.Fire(context.Background(), EventData{Event: JobFailure})
	if len(warnings) != 1 || !strings.Contains(warnings[0].Error(), "exit status 7") {
		t.Fatalf("warnings %v", warnings)
	}
	if !strings.Contains(log.String(), "second ran") || !strings.Contains(log.String(), "warning: hook \"echo broken; exit 7\"") {
		t.Fatalf("log:\n%s", log.String())
	}
	missing := HookRunner{Hooks: hooks, Shell: "/nonexistent/sh"}.Fire(context.Background(), EventData{Event: JobFailure})
	if len(missing) != 2 {
		t.Fatalf("a hook that cannot start is a warning too: %v", missing)
	}
}

// A hanging hook and the processes it started are killed at the timeout.
func TestHangingHookIsKilledWithItsChildren(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	hooks, _ := ParseHooks([]string{"job.start:sleep 300 & echo $! > '" + pidFile + "'; wait"})
	start := time.Now()
	warnings := HookRunner{Hooks: hooks, Timeout: 500 * time.Millisecond}.Fire(context.Background(), EventData{Event: JobStart})
	if len(warnings) != 1 || !strings.Contains(warnings[0].Error(), "killed after 500ms timeout") {
		t.Fatalf("warnings %v", warnings)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("hanging hook held the job for %s", d)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	waitGone(t, pid)
}

// waitGone fails unless process pid ends (or is a zombie waiting for init) within 5 s.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	testkit.Eventually(t, 5*time.Second, fmt.Sprintf("child %d of the hook to end after the timeout", pid), func() bool {
		if syscall.Kill(pid, 0) != nil {
			return true
		}
		out, _ := exec.Command("ps", "-o", "stat=", "-p", strconv.Itoa(pid)).Output()
		return strings.HasPrefix(strings.TrimSpace(string(out)), "Z") // killed, waiting to be reaped
	})
}

func TestHookLeavingBackgroundChildDoesNotHang(t *testing.T) {
	// The hook itself exits at once but its child keeps stdout open for 300 s.
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	hooks, _ := ParseHooks([]string{"job.success:sleep 300 & echo $! > '" + pidFile + "'"})
	start := time.Now()
	warnings := HookRunner{Hooks: hooks, Timeout: 30 * time.Second}.Fire(context.Background(), EventData{Event: JobSuccess})
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %s", d)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0].Error(), "holding its output open") {
		t.Fatalf("warnings %v", warnings)
	}
	b, _ := os.ReadFile(pidFile)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)
}

func TestHookOutputIsBounded(t *testing.T) {
	var log testkit.SyncBuffer
	hooks, _ := ParseHooks([]string{"job.success:head -c 200000 /dev/zero | tr '\\0' x"})
	if w := (HookRunner{Hooks: hooks, Log: &log}).Fire(context.Background(), EventData{Event: JobSuccess}); len(w) != 0 {
		t.Fatal(w)
	}
	if n := len(log.String()); n > maxHookOutput+1024 || !strings.Contains(log.String(), "more bytes of output dropped") {
		t.Fatalf("log of %d bytes", n)
	}
}
