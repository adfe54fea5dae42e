package health

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron"
	"github.com/snapferry/snapferry/cron/history"
	"github.com/snapferry/snapferry/pidmgr"
)

// fixture is a state folder with a registry, a history and a jobs file, and no ESXi host.
type fixture struct {
	dir   string
	reg   *pidmgr.Registry
	hist  *history.Log
	store *cron.Store
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	reg, err := pidmgr.New(pidmgr.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	hist, err := history.Open(history.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{dir: dir, reg: reg, hist: hist, store: cron.NewStore(dir)}
}

func (f *fixture) collect(t *testing.T, now time.Time) *Report {
	t.Helper()
	return Collect(context.Background(), Options{StateDir: f.dir, Registry: f.reg, History: f.hist, Cron: f.store,
		Crontab: cron.FileCrontab{Path: filepath.Join(f.dir, "crontab")}, Now: now})
}

func (f *fixture) done(t *testing.T, id, name string, at time.Time, exit int, mailErr string) {
	t.Helper()
	for _, r := range []history.Record{
		{Job: id, Name: name, Origin: "cron", State: history.StateActive, Time: at.Add(-time.Minute)},
		{Job: id, Name: name, Origin: "cron", State: history.StateDone, Time: at, Exit: history.ExitCode(exit)},
	} {
		if err := f.hist.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if mailErr != "" {
		if err := f.hist.NoteMailFailure(context.Background(), name, mailErr); err != nil {
			t.Fatal(err)
		}
	}
}

func attention(r *Report, want string) bool {
	for _, a := range r.Attention {
		if strings.Contains(a, want) {
			return true
		}
	}
	return false
}

// A host where nothing was ever backed up needs a human: it is not "all healthy".
func TestNothingBackedUpNeedsAHuman(t *testing.T) {
	f := newFixture(t)
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	if r := f.collect(t, now); r.Healthy() || !attention(r, "nothing has been backed up") {
		t.Fatalf("fresh host: %q", r.Attention)
	}
	f.done(t, "j1", "restore", now.Add(-time.Hour), 0, "")
	if r := f.collect(t, now); !attention(r, "nothing has been backed up") {
		t.Fatalf("a restore is no backup: %q", r.Attention)
	}
	f.done(t, "j2", "backup", now.Add(-time.Hour), 0, "")
	if r := f.collect(t, now); attention(r, "nothing has been backed up") {
		t.Fatalf("after a backup: %q", r.Attention)
	}
}

// A scheduled job with no successful run within its schedule needs a human, and so does a
// report mail that could not be sent.
func TestOverdueJobAndUnsentMail(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	if err := f.store.Add(ctx, cron.Job{Name: "nightly", Schedule: "30 1 * * *", Args: []string{"backup", "/etc", "--to=/r"},
		Added: now.Add(-72 * time.Hour)}, false); err != nil {
		t.Fatal(err)
	}
	f.done(t, "j1", "nightly", now.Add(-70*time.Hour), 0, "") // ok three days ago, failing since
	f.done(t, "j2", "nightly", now.Add(-10*time.Hour), 1, "")
	if r := f.collect(t, now); !attention(r, "nightly has had no successful run since") {
		t.Fatalf("overdue job not flagged: %q", r.Attention)
	}
	f.done(t, "j3", "nightly", now.Add(-9*time.Hour), 0, "connection refused")
	r := f.collect(t, now)
	if attention(r, "no successful run since") {
		t.Fatalf("job ok last night flagged as overdue: %q", r.Attention)
	}
	if !attention(r, "report mail") || !attention(r, "connection refused") {
		t.Fatalf("unsent mail not flagged: %q", r.Attention)
	}
	// A job added an hour ago has not missed anything yet.
	if err := f.store.Add(ctx, cron.Job{Name: "fresh", Schedule: "30 1 * * *", Args: []string{"backup", "/srv", "--to=/r"},
		Added: now.Add(-time.Hour)}, false); err != nil {
		t.Fatal(err)
	}
	if r := f.collect(t, now); attention(r, "fresh has had no successful run") {
		t.Fatalf("new job flagged: %q", r.Attention)
	}
}
