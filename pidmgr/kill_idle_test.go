package pidmgr

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A second user launch stops the first user process and its child; cron, remote and sshpipe
// processes keep running; the registry ends up without the stopped process.
func TestKillIdleStopsUserKeepsOthers(t *testing.T) {
	requireLinuxProc(t)
	f := newFixture(t)
	user := f.startReady(TypeUser, "job-u1", "PIDMGR_CHILD=1")
	cron := f.startReady(TypeCron, "job-c1")
	remote := f.startReady(TypeRemote, "job-r1")
	pipe := f.startReady(TypeSSHPipe, "")
	if user.child == 0 || !running(t, user.child) {
		t.Fatalf("user helper's child %d is not running", user.child)
	}

	got := f.killIdle()

	want := map[int]Action{user.pid: ActionTerminated, user.child: ActionTerminated,
		cron.pid: ActionKeep, remote.pid: ActionKeep, pipe.pid: ActionKeep}
	for pid, action := range want {
		if got[pid].Action != action {
			t.Errorf("pid %d: action %q (%s), want %q", pid, got[pid].Action, got[pid].Reason, action)
		}
	}
	if r := got[cron.pid].Reason; !strings.Contains(r, "registered as cron (job job-c1)") {
		t.Errorf("cron reason %q does not say why", r)
	}
	if r := got[user.child].Reason; !strings.Contains(r, "child of pid") {
		t.Errorf("child reason %q does not say why", r)
	}
	user.waitExit(t, 5*time.Second)
	if running(t, user.child) {
		t.Errorf("child %d of the stopped user process still runs", user.child)
	}
	for _, h := range []*helper{cron, remote, pipe} {
		if !running(t, h.pid) {
			t.Errorf("pid %d was stopped but must keep running", h.pid)
		}
	}
	st, err := f.registry().List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	types := map[Type]int{}
	for _, s := range st {
		if s.PID == user.pid {
			t.Errorf("stopped user pid %d still registered", user.pid)
		}
		if s.State == StateLive {
			types[s.Type]++
		}
	}
	if types[TypeCron] != 1 || types[TypeRemote] != 1 || types[TypeSSHPipe] != 1 {
		t.Errorf("live registered types %v, want one each of cron, remote, sshpipe", types)
	}
}

// Dry run reports the same plan and signals nothing.
func TestKillIdleDryRunSignalsNothing(t *testing.T) {
	requireLinuxProc(t)
	f := newFixture(t)
	user := f.startReady(TypeUser, "job-u1", "PIDMGR_CHILD=1")
	cron := f.startReady(TypeCron, "job-c1")

	got := f.killIdle("PIDMGR_DRYRUN=1")

	if got[user.pid].Action != ActionWouldStop || got[user.child].Action != ActionWouldStop {
		t.Errorf("dry run: user %q, child %q; want would-stop for both", got[user.pid].Action, got[user.child].Action)
	}
	if got[cron.pid].Action != ActionKeep {
		t.Errorf("dry run: cron %q, want keep", got[cron.pid].Action)
	}
	time.Sleep(200 * time.Millisecond)
	for _, pid := range []int{user.pid, user.child, cron.pid} {
		if !running(t, pid) {
			t.Errorf("dry run stopped pid %d", pid)
		}
	}
	st, err := f.registry().List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 2 {
		t.Errorf("dry run changed the registry: %d entries, want 2", len(st))
	}
}

// A process that ignores SIGTERM gets SIGKILL after the grace period.
func TestKillIdleEscalatesToSIGKILL(t *testing.T) {
	requireLinuxProc(t)
	f := newFixture(t)
	stubborn := f.startReady(TypeUser, "job-stubborn", "PIDMGR_IGNORE_TERM=1")
	start := time.Now()
	got := f.killIdle("PIDMGR_GRACE=500ms")
	if got[stubborn.pid].Action != ActionKilled {
		t.Fatalf("stubborn process: %q (%s), want killed", got[stubborn.pid].Action, got[stubborn.pid].Reason)
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("SIGKILL came after %s, before the 500ms grace period", d)
	}
	stubborn.waitExit(t, 5*time.Second)
	st, err := f.registry().List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.PID == stubborn.pid {
			t.Errorf("SIGKILLed pid %d still registered", s.PID)
		}
	}
}

// A kill-idle run started by a user snapferry (its parent) keeps that parent: ancestors are
// never stopped.
func TestKillIdleKeepsAncestors(t *testing.T) {
	requireLinuxProc(t)
	f := newFixture(t)
	other := f.startReady(TypeUser, "job-other")
	time.Sleep(30 * time.Millisecond) // the killer must start in a later tick than other
	parent := f.start("register", "PIDMGR_TYPE=user", "PIDMGR_JOB=job-parent", "PIDMGR_SPAWN_KILLER=1")
	if line := parent.next(t); !strings.HasPrefix(line, "ready ") {
		t.Fatalf("parent printed %q", line)
	}
	line := parent.next(t)
	js, ok := strings.CutPrefix(line, "report ")
	if !ok {
		t.Fatalf("killer printed %q", line)
	}
	got := decodeDecisions(t, js)
	if d := got[parent.pid]; d.Action != ActionKeep || !strings.Contains(d.Reason, "ancestor") {
		t.Errorf("parent: %q (%s), want keep as ancestor", d.Action, d.Reason)
	}
	if got[other.pid].Action != ActionTerminated {
		t.Errorf("other user process: %q, want terminated", got[other.pid].Action)
	}
	if !running(t, parent.pid) {
		t.Errorf("parent %d was stopped", parent.pid)
	}
}

// An entry whose pid now belongs to another process (start token differs) protects nothing and
// kills nothing: the unrelated process keeps running, and Cleanup drops the entry as recycled.
func TestRecycledPidIsNotKilled(t *testing.T) {
	requireLinuxProc(t)
	f := newFixture(t)
	sleeper := exec.Command("sleep", "300")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })
	pid := sleeper.Process.Pid
	// A registry written when pid belonged to an earlier snapferry user process.
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	old := Entry{PID: pid, Type: TypeUser, Token: "lx:1", JobID: "job-old", Registered: time.Now().UTC().Truncate(time.Second), Argv: []string{f.exe, "backup"}}
	data, err := encodeRegistry([]Entry{old})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.dir, FileName), data, 0o644); err != nil {
		t.Fatal(err)
	}
	// The entry names the pid but the process there now is not snapferry: nothing may hit it.
	r := f.registry(f.launch())
	rep, err := r.KillIdle(context.Background(), KillOptions{Grace: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := rep.byPID()[pid]; ok {
		t.Errorf("kill-idle decided %q on the recycled pid %d: %s", d.Action, pid, d.Reason)
	}
	if !running(t, pid) {
		t.Fatalf("recycled pid %d was signalled", pid)
	}
	res, err := r.Cleanup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Removed) != 1 || res.Removed[0].State != StateRecycled || !res.FileDeleted {
		t.Errorf("cleanup %+v, want the entry removed as recycled and the file deleted", res)
	}
}

// tokenSwapTable reports a different start token for one pid on Lookup: the pid was recycled
// between planning and signalling.
type tokenSwapTable struct {
	ProcessTable
	pid int
}

func (s tokenSwapTable) Lookup(ctx context.Context, pid int) (Process, error) {
	p, err := s.ProcessTable.Lookup(ctx, pid)
	if pid == s.pid {
		p.Token = "lx:recycled"
	}
	return p, err
}

// The start token is checked again right before a signal: a process whose token changed after
// the plan was made is left alone and reported as vanished.
func TestKillIdleRechecksTokenBeforeSignal(t *testing.T) {
	requireLinuxProc(t)
	f := newFixture(t)
	victim := f.startReady(TypeUser, "job-v")
	r := f.registry(f.launch(), func(o *Options) { o.Table = tokenSwapTable{ProcessTable: gopsutilTable{}, pid: victim.pid} })
	rep, err := r.KillIdle(context.Background(), KillOptions{Grace: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	d, found := rep.byPID()[victim.pid]
	if !found {
		t.Fatalf("victim %d not in the report", victim.pid)
	}
	if d.Action != ActionVanished {
		t.Errorf("victim: %q, want vanished (not signalled)", d.Action)
	}
	time.Sleep(100 * time.Millisecond)
	if !running(t, victim.pid) {
		t.Errorf("victim %d was signalled despite the token change", victim.pid)
	}
}

// An editor or viewer with a snapferry file open is never stopped: a real `tail -f` on a file in
// the state folder is reported as kept, and a snapferry binary whose name is configured as an
// editor, with a snapferry path in its argv, is kept even though it is otherwise a target. (No
// test may add a common name such as "tail" to Names: that would hit other people's processes.)
func TestKillIdleKeepsEditors(t *testing.T) {
	requireLinuxProc(t)
	f := newFixture(t)
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(f.dir, "backup.log")
	if err := os.WriteFile(logFile, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	viewer := exec.Command("tail", "-f", logFile)
	if err := viewer.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = viewer.Process.Kill(); _ = viewer.Wait() })
	editor := f.startReady(TypeUser, "job-e", "ARG="+logFile)
	plain := f.startReady(TypeUser, "job-p")
	waitExec(t, viewer.Process.Pid, "tail")

	r := f.registry(f.launch(), func(o *Options) {
		o.Editors = []string{"tail", "snapferry"}
	})
	rep, err := r.KillIdle(context.Background(), KillOptions{Grace: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	got := rep.byPID()
	for _, pid := range []int{viewer.Process.Pid, editor.pid} {
		if d := got[pid]; d.Action != ActionKeep || !strings.Contains(d.Reason, "editor") {
			t.Errorf("pid %d: %q (%s), want keep as editor", pid, d.Action, d.Reason)
		}
		if !running(t, pid) {
			t.Errorf("editor pid %d was stopped", pid)
		}
	}
	if d := got[plain.pid]; d.Action != ActionTerminated {
		t.Errorf("plain user process: %q, want terminated", d.Action)
	}
}

// waitExec waits until pid runs the program name (after fork, before exec, it still shows the
// parent's name).
func waitExec(t *testing.T, pid int, name string) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if p, err := readLinuxProcess(context.Background(), pid); err == nil && p.Name == name {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("pid %d never ran %s", pid, name)
}

// Name matching is real: a copy of the binary under another path is found by its name alone
// (dry run, so nothing outside the test could ever be hit).
func TestKillIdleMatchesByName(t *testing.T) {
	requireLinuxProc(t)
	f := newFixture(t)
	other := &fixture{t: t, dir: f.dir, exe: filepath.Join(t.TempDir(), "sfnamematch")}
	if err := os.Link(f.exe, other.exe); err != nil {
		t.Fatal(err)
	}
	h := other.startReady(TypeUser, "job-n")
	launch := f.launch()
	byPath := f.registry(launch)
	byName := f.registry(launch, func(o *Options) { o.Names = []string{filepath.Base(other.exe)} })
	for _, tc := range []struct {
		r    *Registry
		want bool
	}{{byPath, false}, {byName, true}} {
		rep, err := tc.r.KillIdle(context.Background(), KillOptions{DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		found := rep.byPID()[h.pid].Action == ActionWouldStop
		if found != tc.want {
			t.Errorf("names %v: found %v, want %v", tc.r.names, found, tc.want)
		}
	}
}

// Of two launches only the newer stops the older: acting for an older user process, KillIdle
// keeps a newer one (it may be a cron job that has not registered yet, or a newer user launch).
func TestKillIdleKeepsNewerProcesses(t *testing.T) {
	requireLinuxProc(t)
	f := newFixture(t)
	older := f.startReady(TypeUser, "job-older")
	time.Sleep(30 * time.Millisecond) // start ticks are 10ms apart at best
	newer := f.startReady(TypeUser, "job-newer")
	r := f.registry(func(o *Options) { o.Self = older.pid })
	rep, err := r.KillIdle(context.Background(), KillOptions{Grace: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	got := rep.byPID()
	if d := got[newer.pid]; d.Action != ActionKeep || !strings.Contains(d.Reason, "started after") {
		t.Errorf("newer launch: %q (%s), want keep", d.Action, d.Reason)
	}
	if d := got[older.pid]; d.Action != ActionKeep || d.Reason != "this process" {
		t.Errorf("older (self): %q (%s), want keep as this process", d.Action, d.Reason)
	}
	if !running(t, newer.pid) || !running(t, older.pid) {
		t.Errorf("a process was stopped")
	}
}

// ESXi behaviour end to end on `ps -c` output (canned, since ESXi cannot run here; dry run, so
// the canned pids are never signalled on this host): matching by WorldName, registered cron
// kept, an editor under busybox kept, this process and a newer launch kept, the older user
// launch stopped, and no children found (ps -c has no parent ids).
func TestKillIdlePlanOnESXiProcessTable(t *testing.T) {
	const bin = "/vmfs/volumes/ds1/snapferry/snapferry"
	row := func(id, name, cmd string) string {
		return padRight(id, 9) + padRight(id, 9) + padRight(name, 46) + cmd + "\n"
	}
	text := pscHeader +
		row("900", "vmkfstools", "/sbin/vmkfstools -i a.vmdk -d thin b.vmdk") +
		row("1000", "snapferry", bin+" backup --vm=web01") +
		row("1100", "snapferry", bin+" cron run nightly") +
		row("1200", "busybox", "vi /vmfs/volumes/ds1/snapferry/var/snapferry-pid") +
		row("1300", "snapferry", bin+" backup --vm=all") +
		row("1400", "snapferry", bin+" backup --vm=db01")
	dir := t.TempDir()
	out := filepath.Join(dir, "ps-c.out")
	if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	tab := &PSTable{Command: []string{"cat", out}}
	ps, err := tab.Processes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tok := map[int]string{}
	for _, p := range ps {
		tok[p.PID] = p.Token
	}
	reg := []Entry{
		{PID: 1000, Type: TypeUser, Token: tok[1000], JobID: "j-web", Argv: []string{bin, "backup"}},
		{PID: 1100, Type: TypeCron, Token: tok[1100], JobID: "j-nightly", Argv: []string{bin, "cron"}},
	}
	data, err := encodeRegistry(reg)
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "var")
	if err := os.MkdirAll(state, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, FileName), data, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := New(Options{Dir: state, Table: tab, Self: 1300, Exe: bin})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.KillIdle(context.Background(), KillOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]struct {
		action Action
		reason string
	}{
		1000: {ActionWouldStop, "registered as user (job j-web)"},
		1100: {ActionKeep, "registered as cron (job j-nightly)"},
		1200: {ActionKeep, "editor"},
		1300: {ActionKeep, "this process"},
		1400: {ActionKeep, "started after"},
	}
	if len(rep.Decisions) != len(want) {
		t.Errorf("%d decisions, want %d: %+v", len(rep.Decisions), len(want), rep.Decisions)
	}
	for _, d := range rep.Decisions {
		w, ok := want[d.Process.PID]
		if !ok || d.Action != w.action || !strings.Contains(d.Reason, w.reason) {
			t.Errorf("pid %d: %q (%s), want %q (%s)", d.Process.PID, d.Action, d.Reason, w.action, w.reason)
		}
	}
}

// byPID indexes a report's decisions.
func (k KillReport) byPID() map[int]Decision {
	m := make(map[int]Decision, len(k.Decisions))
	for _, d := range k.Decisions {
		m[d.Process.PID] = d
	}
	return m
}

// A process with the same name but another executable that is not in this registry belongs to
// another installation (or another test's build) and is left alone; registered here, it is
// judged like any other.
func TestKillIdleLeavesOtherInstallations(t *testing.T) {
	requireLinuxProc(t)
	f := newFixture(t)
	other := &fixture{t: t, dir: filepath.Join(t.TempDir(), "other-state"), exe: filepath.Join(t.TempDir(), "snapferry")}
	if err := os.Link(f.exe, other.exe); err != nil {
		t.Fatal(err)
	}
	foreign := other.startReady(TypeUser, "job-foreign")
	r := f.registry(f.launch(), func(o *Options) { o.Names = []string{"snapferry"} })
	rep, err := r.KillIdle(context.Background(), KillOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if d := rep.byPID()[foreign.pid]; d.Action != ActionKeep || !strings.Contains(d.Reason, "another snapferry installation") {
		t.Errorf("foreign process: %q (%s), want keep as another installation", d.Action, d.Reason)
	}
}
