package pidmgr

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestEntryLineRoundTrip(t *testing.T) {
	e := Entry{PID: 4242, Type: TypeSSHPipe, Token: "lx:123456", JobID: "",
		Registered: time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC),
		Argv:       []string{"/opt/snap ferry/snapferry", "serve", "--root=/vmfs/volumes/ds 1", "tab\there", "new\nline"}}
	l, err := e.line()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(l, "\n") != 0 || strings.Count(l, "\t") != fieldCount-1 {
		t.Fatalf("line %q: want one line with %d tabs", l, fieldCount-1)
	}
	back, err := parseLine(l)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, e) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back, e)
	}
	if !strings.Contains(l, "\t-\t") {
		t.Errorf("line %q: empty job id must be written as -", l)
	}
}

func TestParseLineRejects(t *testing.T) {
	good := "12\tuser\tlx:9\tjob1\t2026-11-21T22:00:00Z\t[\"snapferry\",\"backup\"]"
	if _, err := parseLine(good); err != nil {
		t.Fatalf("good line rejected: %v", err)
	}
	for name, line := range map[string]string{
		"torn":            good[:len(good)-9],
		"torn in json":    "12\tuser\tlx:9\tjob1\t2026-11-21T22:00:00Z\t[\"snapfe",
		"zero pid":        strings.Replace(good, "12", "0", 1),
		"signed pid":      "+" + good,
		"leading zero":    "0" + good,
		"bad type":        strings.Replace(good, "user", "admin", 1),
		"empty token":     strings.Replace(good, "lx:9", "", 1),
		"bad time":        strings.Replace(good, "2026-11-21T22:00:00Z", "yesterday", 1),
		"json object":     strings.Replace(good, "[\"snapferry\",\"backup\"]", "{}", 1),
		"json null":       strings.Replace(good, "[\"snapferry\",\"backup\"]", "null", 1),
		"extra field":     good + "\tx",
		"garbage":         "\x00\x00\x00garbage",
		"spaces for tabs": strings.ReplaceAll(good, "\t", " "),
	} {
		if e, err := parseLine(line); err == nil {
			t.Errorf("%s: %q parsed as %+v", name, line, e)
		}
	}
}

func TestRegisterRejectsBadInput(t *testing.T) {
	requireLinuxProc(t)
	r := newFixture(t).registry()
	if _, err := r.Register(context.Background(), Type("admin"), "", nil); err == nil || !strings.Contains(err.Error(), "want one of user, cron, remote, sshpipe") {
		t.Errorf("bad type: %v", err)
	}
	if _, err := r.Register(context.Background(), TypeUser, "job 1", nil); err == nil || !strings.Contains(err.Error(), "job id") {
		t.Errorf("job id with a space: %v", err)
	}
	if _, err := New(Options{}); err == nil || !strings.Contains(err.Error(), "--home") {
		t.Errorf("no folder: %v", err)
	}
}

// A torn or garbage line is skipped with a warning; every other line survives, also through the
// next rewrite of the file.
func TestReadToleratesTornAndGarbageLines(t *testing.T) {
	requireLinuxProc(t)
	f := newFixture(t)
	var warnings []string
	r := f.registry(func(o *Options) { o.Warn = func(s string) { warnings = append(warnings, s) } })
	ctx := context.Background()
	me, err := r.Register(ctx, TypeUser, "job-a", []string{"snapferry", "backup"})
	if err != nil {
		t.Fatal(err)
	}
	good, _ := me.line()
	other := me
	other.PID, other.JobID = os.Getppid(), "job-b"
	if p, err := (gopsutilTable{}).Lookup(ctx, other.PID); err == nil {
		other.Token = p.Token
	}
	good2, _ := other.line()
	text := header() + "\n" + good + "\n" + "\x00\x7fgarbage\n" + good2[:len(good2)/2] + "\n" + good2 + "\n" + good[:10]
	if err := os.WriteFile(r.Path(), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := r.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 2 || st[0].PID != me.PID || st[1].PID != other.PID {
		t.Fatalf("List kept %+v, want pids %d and %d", st, me.PID, other.PID)
	}
	if st[0].State != StateLive || st[1].State != StateLive {
		t.Errorf("states %s, %s; want live, live", st[0].State, st[1].State)
	}
	if len(warnings) != 3 {
		t.Errorf("warnings %q, want 3 (garbage, torn, torn last line)", warnings)
	}
	// The next change rewrites the file without the bad lines and keeps the good ones.
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(r.Path())
	if err != nil {
		t.Fatal(err)
	}
	if want := header() + "\n" + good2 + "\n"; string(data) != want {
		t.Errorf("after shutdown the file is\n%q\nwant\n%q", data, want)
	}
}

func TestReadRefusesNewerFormat(t *testing.T) {
	requireLinuxProc(t)
	f := newFixture(t)
	r := f.registry()
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	newer := headerPrefix + "v2\nwhatever a newer snapferry writes\n"
	if err := os.WriteFile(r.Path(), []byte(newer), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := r.Register(context.Background(), TypeUser, "", nil)
	if err == nil || !strings.Contains(err.Error(), "upgrade snapferry") {
		t.Fatalf("register over a v2 file: %v", err)
	}
	if data, _ := os.ReadFile(r.Path()); string(data) != newer {
		t.Fatalf("a v2 file was rewritten: %q", data)
	}
}

// 50 processes register at once; no line is lost and every one is live.
func TestConcurrentRegisterFromManyProcesses(t *testing.T) {
	requireLinuxProc(t)
	f := newFixture(t)
	const n = 50
	hs := make([]*helper, n)
	for i := range hs {
		hs[i] = f.start("register", "PIDMGR_TYPE=cron", "PIDMGR_JOB=job-"+string(rune('A'+i%26))+string(rune('a'+i/26)))
	}
	for _, h := range hs {
		if line := h.next(t); !strings.HasPrefix(line, "ready ") {
			t.Fatalf("helper %d: %q", h.pid, line)
		}
		go func() { h.done <- h.cmd.Wait() }()
	}
	r := f.registry()
	st, err := r.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, s := range st {
		if s.State != StateLive {
			t.Errorf("pid %d is %s", s.PID, s.State)
		}
		seen[s.PID] = true
	}
	for _, h := range hs {
		if !seen[h.pid] {
			t.Errorf("pid %d lost", h.pid)
		}
	}
	if len(st) != n {
		t.Errorf("%d entries, want %d", len(st), n)
	}
	// They end without Shutdown (stdin closes): Cleanup removes all and deletes the file.
	for _, h := range hs {
		_ = h.stdin.Close()
	}
	for _, h := range hs {
		h.waitExit(t, 10*time.Second)
	}
	res, err := r.Cleanup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Removed) != n || res.Kept != 0 || !res.FileDeleted {
		t.Errorf("cleanup removed %d, kept %d, deleted %v; want %d, 0, true", len(res.Removed), res.Kept, res.FileDeleted, n)
	}
	if _, err := os.Stat(r.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("empty registry file still there: %v", err)
	}
}

// A run killed with SIGKILL cannot deregister; the next Cleanup drops its entry and keeps the
// live ones.
func TestCleanupDropsSIGKILLedRun(t *testing.T) {
	requireLinuxProc(t)
	f := newFixture(t)
	crashed := f.startReady(TypeUser, "job-crash")
	alive := f.startReady(TypeCron, "job-alive")
	if err := syscall.Kill(crashed.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	crashed.waitExit(t, 5*time.Second)
	r := f.registry()
	st, err := r.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	states := map[int]State{}
	for _, s := range st {
		states[s.PID] = s.State
	}
	if states[crashed.pid] != StateGone || states[alive.pid] != StateLive {
		t.Fatalf("states %v: want %d gone, %d live", states, crashed.pid, alive.pid)
	}
	res, err := r.Cleanup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Removed) != 1 || res.Removed[0].Entry.PID != crashed.pid || res.Removed[0].State != StateGone || res.Kept != 1 || res.FileDeleted {
		t.Errorf("cleanup %+v: want only pid %d removed as gone", res, crashed.pid)
	}
}

// SIGTERM runs the helper's Shutdown (as the CLI's signal handler does): it removes itself and
// the dead entries, and keeps the live ones.
func TestShutdownFromSignalHandler(t *testing.T) {
	requireLinuxProc(t)
	f := newFixture(t)
	dead := f.startReady(TypeUser, "job-dead")
	_ = syscall.Kill(dead.pid, syscall.SIGKILL)
	dead.waitExit(t, 5*time.Second)
	keep := f.startReady(TypeRemote, "job-keep")
	leaving := f.startReady(TypeCron, "job-leaving")
	if err := syscall.Kill(leaving.pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	leaving.waitExit(t, 5*time.Second)
	es, _, err := readFile(filepath.Join(f.dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].PID != keep.pid || es[0].JobID != "job-keep" {
		t.Fatalf("after shutdown: %+v, want only pid %d", es, keep.pid)
	}
	// Shutdown again (defer after the handler) is harmless, also for a pid never registered.
	r := f.registry()
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A holder that never lets go makes writers fail with a clear error, not hang.
func TestLockTimeoutNamesTheFile(t *testing.T) {
	requireLinuxProc(t)
	f := newFixture(t)
	holder, err := lockExclusive(context.Background(), filepath.Join(f.dir, LockFileName), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Unlock()
	r := f.registry(func(o *Options) { o.Lock = 200 * time.Millisecond })
	_, err = r.Register(context.Background(), TypeUser, "", nil)
	if err == nil || !strings.Contains(err.Error(), LockFileName) || !strings.Contains(err.Error(), "still held") {
		t.Fatalf("register under a held lock: %v", err)
	}
}

func TestNewProcessTableChoosesByProc(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err == nil {
		if _, ok := NewProcessTable("/proc", nil).(gopsutilTable); !ok {
			t.Errorf("with /proc: got %T, want gopsutilTable", NewProcessTable("/proc", nil))
		}
	}
	tab, ok := NewProcessTable(t.TempDir(), nil).(*PSTable)
	if !ok {
		t.Fatalf("without /proc: got %T, want *PSTable", tab)
	}
	if got := tab.command(); !reflect.DeepEqual(got, []string{"ps", "-c"}) {
		t.Errorf("default ps command %q", got)
	}
}

// Whatever parses writes back to a line that parses to the same entry: the reader never accepts
// something the writer could not reproduce.
func FuzzParseLine(f *testing.F) {
	f.Add("12\tuser\tlx:9\tjob1\t2026-11-21T22:00:00Z\t[\"snapferry\",\"backup\"]")
	f.Add("4242\tsshpipe\tpsc:00ff\t-\t2026-11-21T22:00:00+01:00\t[]")
	f.Fuzz(func(t *testing.T, s string) {
		e, err := parseLine(s)
		if err != nil {
			return
		}
		l, err := e.line()
		if err != nil {
			t.Fatalf("parsed %q but cannot write it back: %v", s, err)
		}
		back, err := parseLine(l)
		if err != nil || !reflect.DeepEqual(back, e) {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, e, l, back, err)
		}
	})
}
