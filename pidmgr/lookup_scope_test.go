package pidmgr

import (
	"context"
	"os/exec"
	"sync/atomic"
	"testing"
)

// listCounter is the real /proc table that counts how often the whole table is listed.
type listCounter struct {
	ProcessTable
	lists atomic.Int32
}

func (c *listCounter) lookupReadsOne() {}

func (c *listCounter) Processes(ctx context.Context) ([]Process, error) {
	c.lists.Add(1)
	return c.ProcessTable.Processes(ctx)
}

// A job start and end on a host with hundreds of processes listed all of them three times even
// for an empty registry; they now look up only the registered pids, and KillIdle lists the
// table only when another user launch could be stopped.
func TestJobStartListsProcessTableOnlyWhenItMustStop(t *testing.T) {
	requireLinuxProc(t)
	f := newFixture(t)
	table := &listCounter{ProcessTable: NewProcessTable("/proc", nil)}
	withTable := func(o *Options) { o.Table = table }
	ctx := context.Background()

	// Empty registry: no listing at all.
	r := f.registry(withTable)
	if _, err := r.Begin(ctx, BeginOptions{Type: TypeUser, KillIdle: true, Command: "restore"}); err != nil {
		t.Fatal(err)
	}
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := table.lists.Load(); n != 0 {
		t.Fatalf("job start and end on an empty registry listed the process table %d times, want 0", n)
	}

	// A live cron job and a gone entry: still judged by lookups, the gone one removed.
	cron := f.startReady(TypeCron, "nightly")
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(r.path, append(mustEntries(t, r), Entry{PID: gone.Process.Pid, Type: TypeUser, Token: "lx:1@x"})); err != nil {
		t.Fatal(err)
	}
	rep, err := r.Cleanup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Removed) != 1 || rep.Removed[0].Entry.PID != gone.Process.Pid || rep.Kept != 1 {
		t.Fatalf("cleanup by lookups: %+v, want the gone pid %d removed and the cron job %d kept", rep, gone.Process.Pid, cron.pid)
	}
	if _, err := r.Begin(ctx, BeginOptions{Type: TypeUser, KillIdle: true, Command: "restore"}); err != nil {
		t.Fatal(err)
	}
	if n := table.lists.Load(); n != 0 {
		t.Fatalf("with only a cron job registered, a job start listed the process table %d times, want 0", n)
	}
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	// Another user launch is registered: now KillIdle must see the whole table (its children).
	f.startReady(TypeUser, "")
	r2 := f.registry(withTable, f.launch())
	if _, err := r2.Begin(ctx, BeginOptions{Type: TypeUser, KillIdle: true, Command: "restore"}); err != nil {
		t.Fatal(err)
	}
	if n := table.lists.Load(); n != 1 {
		t.Fatalf("with another user launch registered, KillIdle listed the process table %d times, want 1", n)
	}
}

func mustEntries(t *testing.T, r *Registry) []Entry {
	t.Helper()
	es, err := r.snapshotEntries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return es
}
