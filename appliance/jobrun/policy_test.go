package jobrun

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron/history"
	"github.com/snapferry/snapferry/pidmgr"
)

func newRegistry(t *testing.T, dir string) *pidmgr.Registry {
	t.Helper()
	r, err := pidmgr.New(pidmgr.Options{Dir: dir, Names: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// waitBeat waits until the job's heartbeat satisfies ok.
func waitBeat(t *testing.T, r *pidmgr.Registry, pid int, ok func(pidmgr.Heartbeat) bool) pidmgr.Heartbeat {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		hb, found := r.Heartbeat(pid)
		if found && ok(hb) {
			return hb
		}
		if time.Now().After(deadline) {
			t.Fatalf("heartbeat of pid %d: %+v (found %v), never as expected", pid, hb, found)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sleeper starts `sleep 300`, stopped when the test ends.
func sleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	c := exec.Command("sleep", "300")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
	return c
}

// A check asks to be kept while busy, starts no kill-idle (the older user job of the same
// registry keeps running, where a backup stops it), stays out of the history, and its
// heartbeat follows Work.
func TestCheckJobIsKeptWhileBusyAndStopsNothing(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	for _, command := range []string{"backup", "check"} {
		t.Run(command, func(t *testing.T) {
			dir := t.TempDir()
			// Two sleeps stand for an older user job of this registry and for this launch:
			// "ours" by name, registered, the older one started first.
			older := sleeper(t)
			time.Sleep(30 * time.Millisecond) // a later start tick (10ms) for the launch
			launch := sleeper(t)
			olderReg, err := pidmgr.New(pidmgr.Options{Dir: dir, Self: older.Process.Pid, Names: []string{"sleep"}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := olderReg.Register(context.Background(), pidmgr.TypeUser, "older", older.Args); err != nil {
				t.Fatal(err)
			}
			r, err := pidmgr.New(pidmgr.Options{Dir: dir, Self: launch.Process.Pid, Names: []string{"sleep"}})
			if err != nil {
				t.Fatal(err)
			}
			hist, err := history.Open(history.Options{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			j, err := Begin(context.Background(), Options{StateDir: dir, Command: command, Argv: []string{"snapferry", command},
				Origin: Origin{Type: pidmgr.TypeUser, Attempt: 1}, Registry: r, History: hist,
				Getenv: env(map[string]string{EnvIdleAfter: "40ms"})})
			if err != nil {
				t.Fatal(err)
			}
			stopped := j.Begin.Kill.Stopped() > 0
			if stopped != (command == "backup") {
				t.Errorf("%s stopped the older user job: %v (%+v)", command, stopped, j.Begin.Kill.Decisions)
			}
			pid := j.Begin.Entry.PID
			first := waitBeat(t, r, pid, func(hb pidmgr.Heartbeat) bool { return true })
			if first.KeepWhileBusy != (command == "check") || first.Command != command || first.Token != j.Begin.Entry.Token {
				t.Errorf("first heartbeat %+v: want command %s, the entry's token", first, command)
			}
			j.Work(4096)
			waitBeat(t, r, pid, func(hb pidmgr.Heartbeat) bool { return hb.Progress == 4096 && hb.At.After(first.At) })
			if err := j.End(Outcome{}); err != nil {
				t.Fatal(err)
			}
			if _, found := r.Heartbeat(pid); found {
				t.Error("heartbeat left after End")
			}
			jobs, err := hist.Jobs(context.Background(), r.Table())
			if err != nil {
				t.Fatal(err)
			}
			if recorded := len(jobs) > 0; recorded != (command == "backup") {
				t.Errorf("%s in the job history: %v", command, recorded)
			}
		})
	}
}

func TestPolicies(t *testing.T) {
	for cmd, want := range map[string]policy{
		"backup":  {killIdle: true, history: true},
		"replica": {killIdle: true, history: true},
		"restore": {killIdle: true, keepWhileBusy: true, history: true},
		"check":   {keepWhileBusy: true},
		"prune":   {keepWhileBusy: true},
	} {
		if got, err := policyFor(cmd); err != nil || got != want {
			t.Errorf("%s: %+v, %v; want %+v", cmd, got, err, want)
		}
	}
	if _, err := Begin(context.Background(), Options{StateDir: t.TempDir(), Command: "bogus"}); err == nil {
		t.Error("Begin accepted an unknown command")
	}
	warned := ""
	if d := IdleAfter(env(map[string]string{EnvIdleAfter: "soon"}), func(s string) { warned = s }); d != pidmgr.DefaultIdleAfter || warned == "" {
		t.Errorf("invalid %s: %s, warning %q", EnvIdleAfter, d, warned)
	}
}
