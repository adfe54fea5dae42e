package history

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron/testkit"
	"github.com/snapferry/snapferry/pidmgr"
)

const helperEnv = "HISTORY_TEST_HELPER"

// TestMain lets the test binary act as a separate appending process (many writers at once).
func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "append" {
		os.Exit(appendHelper())
	}
	os.Exit(m.Run())
}

// appendHelper appends HISTORY_N records for jobs "WRITER-i" to the log in HISTORY_DIR.
func appendHelper() int {
	n, _ := strconv.Atoi(os.Getenv("HISTORY_N"))
	maxBytes, _ := strconv.ParseInt(os.Getenv("HISTORY_MAX"), 10, 64)
	l, err := Open(Options{Dir: os.Getenv("HISTORY_DIR"), MaxBytes: maxBytes, Keep: 1000})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	w := os.Getenv("HISTORY_WRITER")
	for i := 0; i < n; i++ {
		rec := Record{Job: fmt.Sprintf("%s-%d", w, i), Name: w, Origin: "cron", State: StateDone, Exit: ExitCode(0),
			Paths: []string{strings.Repeat("p", 200)}} // ~300 bytes a line: rotation happens often
		if err := l.Append(context.Background(), rec); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}
	return 0
}

// fixedClock returns t and advances it by a minute on every call.
type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

// Sleep returns at once: the history never waits on its clock.
func (c *fixedClock) Sleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

func (c *fixedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Minute)
	return c.t
}

func newLog(t *testing.T, o Options) (*Log, *[]string) {
	t.Helper()
	var warnings []string
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.Clock == nil {
		o.Clock = &fixedClock{t: time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC)}
	}
	o.Warn = func(s string) { warnings = append(warnings, s) }
	l, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	return l, &warnings
}

func mustAppend(t *testing.T, l *Log, recs ...Record) {
	t.Helper()
	for _, r := range recs {
		if err := l.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFoldLifeCycleAndRetries(t *testing.T) {
	l, _ := newLog(t, Options{})
	mustAppend(t, l,
		Record{Job: "j1", Name: "nightly", Origin: "cron", State: StateActive, PID: 10, Token: "lx:1", VMs: []string{"web01"}},
		Record{Job: "j2", Name: "adhoc", Origin: "user", State: StateActive},
		Record{Job: "j1", State: StateActive, BytesRead: 100},
		Record{Job: "j1", State: StateDone, Exit: ExitCode(1), Error: "store unreachable", BytesRead: 200, BytesSent: 50},
		Record{Job: "j1", Attempt: 2, State: StateQueued, PID: 10, Token: "lx:1"},
		Record{Job: "j1", Attempt: 2, State: StateActive, PID: 11, Token: "lx:2"},
		Record{Job: "j1", Attempt: 1, State: StateDone, Exit: ExitCode(9), Error: "late record of attempt 1"},
		Record{Job: "j1", Attempt: 2, State: StateDone, Exit: ExitCode(0), BytesRead: 300, BytesSent: 30, BytesStored: 20},
		Record{Job: "j2", State: StateDone, Exit: ExitCode(3), Error: "VM db01 skipped"},
	)
	jobs, err := l.Jobs(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 || jobs[0].ID != "j1" || jobs[1].ID != "j2" {
		t.Fatalf("jobs %+v", jobs)
	}
	j1 := jobs[0]
	if j1.State != StateDone || j1.Result() != ResultOK || j1.Attempt != 2 || j1.Error != "" || j1.PID != 11 {
		t.Errorf("j1 %+v: want attempt 2 done ok without the error of attempt 1", j1)
	}
	if j1.BytesRead != 300 || j1.BytesSent != 30 || j1.BytesStored != 20 || j1.Name != "nightly" || j1.VMs[0] != "web01" {
		t.Errorf("j1 %+v: counts, name or VMs lost", j1)
	}
	if j1.Queued.IsZero() || j1.Started.Before(j1.Queued) || !j1.Ended.After(j1.Started) {
		t.Errorf("j1 times: queued %v started %v ended %v", j1.Queued, j1.Started, j1.Ended)
	}
	if jobs[1].Result() != ResultPartial || jobs[1].Error != "VM db01 skipped" {
		t.Errorf("j2 %+v: want partial with the error", jobs[1])
	}
	if _, err := l.Job(context.Background(), "nope", nil); !errors.Is(err, ErrNoJob) || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown job: %v", err)
	}
}

func TestAppendRejectsBadRecords(t *testing.T) {
	l, _ := newLog(t, Options{})
	for _, r := range []Record{{State: StateDone}, {Job: "j", State: "finished"}, {Job: "j", State: StateDone, Attempt: -1}} {
		if err := l.Append(context.Background(), r); err == nil {
			t.Errorf("record %+v accepted", r)
		}
	}
	if _, err := Open(Options{}); err == nil || !strings.Contains(err.Error(), "--home") {
		t.Errorf("no folder: %v", err)
	}
}

func TestLongFieldsAreCapped(t *testing.T) {
	l, _ := newLog(t, Options{})
	paths := make([]string, 5000)
	for i := range paths {
		paths[i] = fmt.Sprintf("/vmfs/volumes/ds1/files/%05d", i)
	}
	mustAppend(t, l, Record{Job: "big", State: StateDone, Exit: ExitCode(1), Paths: paths, Error: strings.Repeat("e", 100000)})
	fi, err := os.Stat(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > 16<<10 {
		t.Errorf("one record takes %d bytes", fi.Size())
	}
	j, err := l.Job(context.Background(), "big", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(j.Paths) != maxListItems || !strings.Contains(j.Paths[maxListItems-1], "4901 more") || !strings.Contains(j.Error, "more bytes") {
		t.Errorf("capping lost the hint of what was cut: %d paths, last %q", len(j.Paths), j.Paths[len(j.Paths)-1])
	}
}

// A writer killed mid-line leaves a torn last line: readers skip it, and the next append starts
// on a fresh line so no record is lost or glued to the torn bytes.
func TestTornLastLineTolerated(t *testing.T) {
	l, warnings := newLog(t, Options{})
	mustAppend(t, l, Record{Job: "a", State: StateDone, Exit: ExitCode(0)})
	good, err := os.ReadFile(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	torn := good[:len(good)/2]
	f, err := os.OpenFile(l.Path(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(append([]byte("{\"v\":1,garbage\n"), torn...)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	recs, err := l.Records(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || len(*warnings) != 2 || !strings.Contains((*warnings)[1], "torn last line") {
		t.Fatalf("records %+v, warnings %q: want 1 record and 2 warnings (garbage, torn)", recs, *warnings)
	}
	mustAppend(t, l, Record{Job: "b", State: StateDone, Exit: ExitCode(0)})
	jobs, err := l.Jobs(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 || jobs[0].ID != "a" || jobs[1].ID != "b" {
		t.Fatalf("after append: %+v, want jobs a and b", jobs)
	}
	data, _ := os.ReadFile(l.Path())
	if !bytes.HasSuffix(data, []byte("}\n")) || bytes.Count(data, []byte("\n")) != 4 {
		t.Errorf("file layout %q: want torn bytes on a line of their own", data)
	}
}

// Many processes append at once, with rotation happening all the time; every record arrives
// exactly once and every line is valid.
func TestConcurrentAppendersFromManyProcesses(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	const writers, each = 12, 40
	testkit.Concurrently(t, writers, func(w int) error {
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), helperEnv+"=append", "HISTORY_DIR="+dir, "HISTORY_N="+strconv.Itoa(each),
			"HISTORY_MAX=8192", "HISTORY_WRITER=w"+strconv.Itoa(w))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("writer: %v: %s", err, stderr.String())
		}
		return nil
	})
	l, warnings := newLog(t, Options{Dir: dir, Keep: 1000, MaxBytes: 8192})
	recs, err := l.Records(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(*warnings) != 0 {
		t.Fatalf("bad lines: %q", *warnings)
	}
	seen := map[string]int{}
	for _, r := range recs {
		seen[r.Job]++
	}
	for w := 0; w < writers; w++ {
		for i := 0; i < each; i++ {
			if id := fmt.Sprintf("w%d-%d", w, i); seen[id] != 1 {
				t.Errorf("job %s recorded %d times", id, seen[id])
			}
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, FileName+"*"))
	if len(files) < 5 {
		t.Errorf("only %d files: rotation did not run under concurrency", len(files))
	}
	for _, f := range files {
		if fi, _ := os.Stat(f); fi.Size() > 8192 {
			t.Errorf("%s is %d bytes, over the 8192 limit", f, fi.Size())
		}
	}
}

func TestRotationKeepsLastN(t *testing.T) {
	l, _ := newLog(t, Options{MaxBytes: 1024, Keep: 2})
	for i := 0; i < 60; i++ {
		mustAppend(t, l, Record{Job: "job" + strconv.Itoa(i), State: StateDone, Exit: ExitCode(0)})
	}
	files, _ := filepath.Glob(l.Path() + "*")
	if len(files) != 3 {
		t.Fatalf("files %v: want the current one and 2 rotated", files)
	}
	jobs, err := l.Jobs(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if jobs[len(jobs)-1].ID != "job59" || jobs[0].ID == "job0" || len(jobs) >= 60 {
		t.Errorf("kept %d jobs from %s to %s: want the newest, not the oldest", len(jobs), jobs[0].ID, jobs[len(jobs)-1].ID)
	}
	for i := 1; i < len(jobs); i++ { // order survives reading across files
		a, _ := strconv.Atoi(strings.TrimPrefix(jobs[i-1].ID, "job"))
		b, _ := strconv.Atoi(strings.TrimPrefix(jobs[i].ID, "job"))
		if b != a+1 {
			t.Fatalf("jobs out of order at %d: %s then %s", i, jobs[i-1].ID, jobs[i].ID)
		}
	}
}

// A job still active whose process vanished (or whose pid now runs another process) shows as
// died; one whose process runs stays active. Real processes, real process table.
func TestDiedDetection(t *testing.T) {
	_, err := os.Stat("/proc/self/stat")
	testkit.Require(t, err == nil, "no /proc: %v", err)
	table := pidmgr.NewProcessTable("/proc", nil)
	ctx := context.Background()
	start := func() (*exec.Cmd, pidmgr.Process) {
		c := exec.Command("sleep", "300")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
		p, err := table.Lookup(ctx, c.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		return c, p
	}
	running, rp := start()
	crashed, cp := start()
	_, recycled := start()
	_ = running
	l, _ := newLog(t, Options{})
	mustAppend(t, l,
		Record{Job: "run", Name: "n", State: StateActive, PID: rp.PID, Token: rp.Token},
		Record{Job: "crash", Name: "n", State: StateActive, PID: cp.PID, Token: cp.Token},
		Record{Job: "recycled", Name: "n", State: StateActive, PID: recycled.PID, Token: "lx:1"},
		Record{Job: "waiting", Name: "n", State: StateQueued, PID: cp.PID, Token: cp.Token},
	)
	_ = crashed.Process.Kill()
	_ = crashed.Wait()
	jobs, err := l.Jobs(ctx, table)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]State{"run": StateActive, "crash": StateDied, "recycled": StateDied, "waiting": StateDied}
	for _, j := range jobs {
		if j.State != want[j.ID] {
			t.Errorf("job %s: %s, want %s", j.ID, j.State, want[j.ID])
		}
		if j.State == StateDied && !strings.Contains(j.Error, strconv.Itoa(j.PID)) {
			t.Errorf("job %s: error %q does not name the process", j.ID, j.Error)
		}
	}
	sums, err := l.Summaries(ctx, table)
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 1 || sums[0].Runs != 4 || sums[0].Died != 3 || sums[0].Running != 1 {
		t.Errorf("summary %+v: want 4 runs, 3 died, 1 running", sums)
	}

	// Writing the verdict down: three died records, once; then no process check is needed.
	snap, err := pidmgr.Snapshot(ctx, table)
	if err != nil {
		t.Fatal(err)
	}
	died, err := l.RecordDied(ctx, snap)
	if err != nil || len(died) != 3 {
		t.Fatalf("RecordDied: %d jobs, %v; want 3", len(died), err)
	}
	if again, err := l.RecordDied(ctx, snap); err != nil || len(again) != 0 {
		t.Errorf("second RecordDied: %d jobs, %v; want none", len(again), err)
	}
	jobs, err = l.Jobs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		if j.State != want[j.ID] {
			t.Errorf("after RecordDied, without process checks: job %s is %s, want %s", j.ID, j.State, want[j.ID])
		}
	}
}

func TestSummaries(t *testing.T) {
	l, _ := newLog(t, Options{})
	mustAppend(t, l,
		Record{Job: "a1", Name: "nightly", State: StateDone, Exit: ExitCode(0)},
		Record{Job: "a2", Name: "nightly", State: StateDone, Exit: ExitCode(1), Error: "x"},
		Record{Job: "a3", Name: "nightly", State: StateDone, Exit: ExitCode(3)},
		Record{Job: "b1", Origin: "user", State: StateDone, Exit: ExitCode(130)},
		Record{Job: "c1", Name: "weekly", State: StateDied, Error: "host rebooted"},
	)
	sums, err := l.Summaries(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 3 {
		t.Fatalf("summaries %+v", sums)
	}
	n, u, w := sums[0], sums[1], sums[2]
	if n.Name != "nightly" || n.Runs != 3 || n.OK != 1 || n.Failed != 1 || n.Partial != 1 || n.Last.ID != "a3" || n.LastOK.IsZero() {
		t.Errorf("nightly %+v", n)
	}
	if u.Name != "user" || u.Interrupted != 1 || w.Name != "weekly" || w.Died != 1 || !w.LastOK.IsZero() {
		t.Errorf("user %+v, weekly %+v", u, w)
	}
}

// The Run helper writes a whole attempt: queued, active with progress, done with an error.
func TestRunRecorder(t *testing.T) {
	l, _ := newLog(t, Options{})
	ctx := context.Background()
	base := Record{Job: "j9", Name: "nightly", Origin: "cron", Attempt: 2, PID: 77, Token: "lx:5", VMs: []string{"web01", "db01"}}
	if err := l.Queue(ctx, base); err != nil {
		t.Fatal(err)
	}
	run, err := l.Start(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Progress(ctx, Counts{Read: 10, Sent: 5}); err != nil {
		t.Fatal(err)
	}
	if j, _ := l.Job(ctx, "j9", nil); j.State != StateActive || j.BytesRead != 10 || j.Queued.IsZero() {
		t.Errorf("while running: %+v", j)
	}
	if err := run.End(ctx, 3, errors.New("VM db01 skipped: snapshot failed"), Counts{Read: 20, Sent: 8, Stored: 6}); err != nil {
		t.Fatal(err)
	}
	j, err := l.Job(ctx, "j9", nil)
	if err != nil {
		t.Fatal(err)
	}
	if j.Result() != ResultPartial || j.Attempt != 2 || j.BytesStored != 6 || len(j.VMs) != 2 || !strings.Contains(j.Error, "db01") || j.PID != 77 {
		t.Errorf("after end: %+v", j)
	}
	recs, _ := l.Records(ctx)
	if len(recs) != 4 || recs[3].VMs != nil {
		t.Errorf("%d records, last %+v: want 4, lists only on the first ones", len(recs), recs[len(recs)-1])
	}
}

// No input makes the reader panic, and what it accepts is a valid record of this version.
func FuzzParseRecord(f *testing.F) {
	f.Add(`{"v":1,"job":"j","state":"done","time":"2026-11-21T22:00:00Z","exit":0}`)
	f.Add(`{"v":1,"job":"j","state":"active","pid":5,"token":"lx:1","vms":["a"]}`)
	f.Add(`{"v":2,"job":"j","state":"done"}`)
	f.Fuzz(func(t *testing.T, line string) {
		rec, err := parseRecord(line)
		if err != nil {
			return
		}
		if rec.V != formatVersion || rec.Job == "" || rec.validate() != nil {
			t.Fatalf("accepted %q as %+v", line, rec)
		}
		_ = Fold([]Record{rec, rec})
	})
}
