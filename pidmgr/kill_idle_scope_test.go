package pidmgr

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A snapferry process of the same executable registered in another state folder is not this
// registry's to judge: kill-idle keeps it, whatever its type (issue: 18 of 20 parallel backups
// with different --home folders were killed).
func TestKillIdleKeepsProcessesOfOtherRegistries(t *testing.T) {
	requireLinuxProc(t)
	f := newFixture(t)
	other := &fixture{t: t, dir: filepath.Join(t.TempDir(), "other-home"), exe: f.exe}
	foreignUser := other.startReady(TypeUser, "job-other-home")
	foreignServe := other.startReady(TypeRemote, "")
	third := f.start("register", "PIDMGR_TYPE=user", "PIDMGR_DIR="+filepath.Join(t.TempDir(), "third"))
	if line := third.next(t); !strings.HasPrefix(line, "ready ") {
		t.Fatalf("helper: %q", line)
	}
	mine := f.startReady(TypeUser, "job-mine")

	got := f.killIdle()

	for _, h := range []*helper{foreignUser, foreignServe, third} {
		d := got[h.pid]
		if d.Action != ActionKeep || !strings.Contains(d.Reason, "not registered in") {
			t.Errorf("pid %d of another state folder: %q (%s), want keep", h.pid, d.Action, d.Reason)
		}
		if !running(t, h.pid) {
			t.Errorf("pid %d of another state folder was stopped", h.pid)
		}
	}
	if d := got[mine.pid]; d.Action != ActionTerminated {
		t.Errorf("older user job of this registry: %q (%s), want terminated", d.Action, d.Reason)
	}
}

// A user job that asked to be kept while busy (restore, check, prune) survives a newer user
// launch while its heartbeat shows recent progress, and is stopped as an idle leftover once it
// shows none for IdleAfter; a user backup is replaced either way.
func TestKillIdleKeepsBusyJobsStopsIdleOnes(t *testing.T) {
	requireLinuxProc(t)
	f := newFixture(t)
	const idleAfter = 3 * time.Second
	idle := f.startReady(TypeUser, "job-idle", "PIDMGR_COMMAND=check", "PIDMGR_KEEP_BUSY=1")
	busy := f.startReady(TypeUser, "job-busy", "PIDMGR_COMMAND=restore", "PIDMGR_KEEP_BUSY=1")
	backup := f.startReady(TypeUser, "job-backup", "PIDMGR_COMMAND=backup")
	r := f.registry(f.launch())
	// Idle means no heartbeat for longer than idleAfter: let that much time pass since the
	// idle job's first (and only) heartbeat.
	hb, ok := r.readBeat(idle.pid)
	if !ok {
		t.Fatal("the idle job wrote no heartbeat when it began")
	}
	time.Sleep(time.Until(hb.At.Add(idleAfter + 200*time.Millisecond)))
	busy.beat(t, 1<<20)
	backup.beat(t, 1<<20)

	rep, err := r.KillIdle(context.Background(), KillOptions{IdleAfter: idleAfter})
	if err != nil {
		t.Fatal(err)
	}
	got := rep.byPID()
	if d := got[busy.pid]; d.Action != ActionKeep || !strings.Contains(d.Reason, "restore (job job-busy) is making progress") {
		t.Errorf("busy restore: %q (%s), want keep", d.Action, d.Reason)
	}
	if d := got[idle.pid]; d.Action != ActionTerminated || !strings.Contains(d.Reason, "idle leftover") {
		t.Errorf("idle check: %q (%s), want terminated as an idle leftover", d.Action, d.Reason)
	}
	if d := got[backup.pid]; d.Action != ActionTerminated || !strings.Contains(d.Reason, "replaces it") {
		t.Errorf("user backup: %q (%s), want terminated (replaced)", d.Action, d.Reason)
	}
	if !running(t, busy.pid) {
		t.Error("the busy restore was stopped")
	}
	idle.waitExit(t, 5*time.Second)
	if _, ok := r.readBeat(idle.pid); ok {
		t.Error("the stopped job's heartbeat file is left behind")
	}
}

// A heartbeat proves nothing for another process: a file left by an earlier process with the
// same pid (another start token) gives no protection.
func TestKillIdleIgnoresHeartbeatOfAnotherProcess(t *testing.T) {
	requireLinuxProc(t)
	f := newFixture(t)
	h := f.startReady(TypeUser, "job-h")
	r := f.registry(f.launch())
	if err := r.writeBeat(Heartbeat{PID: h.pid, Token: "lx:1@old-boot", Command: "restore", KeepWhileBusy: true, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	rep, err := r.KillIdle(context.Background(), KillOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if d := rep.byPID()[h.pid]; d.Action != ActionWouldStop {
		t.Errorf("user job with a foreign heartbeat: %q (%s), want would-stop", d.Action, d.Reason)
	}
}

// A stopped (SIGSTOP, Ctrl-Z) leftover is woken after SIGTERM, so it ends through its own
// handler within the grace period instead of waiting for SIGKILL.
func TestKillIdleWakesStoppedLeftover(t *testing.T) {
	requireLinuxProc(t)
	f := newFixture(t)
	h := f.startReady(TypeUser, "job-stopped")
	if err := h.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	got := f.killIdle("PIDMGR_GRACE=60s")
	if d := got[h.pid]; d.Action != ActionTerminated {
		t.Errorf("stopped leftover: %q (%s), want terminated", d.Action, d.Reason)
	}
	h.waitExit(t, 5*time.Second)
}
