package pidmgr

import (
	"context"
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// noListTable fails every listing of the whole process table: Leave must never need one.
type noListTable struct{ ProcessTable }

func (noListTable) Processes(context.Context) ([]Process, error) {
	return nil, errors.New("the process table was listed")
}

// Leave removes the caller's own entry and nothing else, without listing the process table
// (what Shutdown does, and what made every ssh:// command wait ~1 s for the far serve's exit on
// a loaded host). A stale entry stays for the next Cleanup.
func TestLeaveRemovesOnlyItsOwnEntryWithoutAScan(t *testing.T) {
	requireLinuxProc(t)
	f := newFixture(t)
	dead := f.startReady(TypeUser, "job-dead")
	_ = syscall.Kill(dead.pid, syscall.SIGKILL)
	dead.waitExit(t, 5*time.Second)
	r := f.registry(func(o *Options) { o.Table = noListTable{NewProcessTable("/proc", nil)} })
	ctx := context.Background()
	e, err := r.Register(ctx, TypeRemote, "", []string{"snapferry", "serve"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Leave(ctx, e); err != nil {
		t.Fatal(err)
	}
	es, _, err := readFile(filepath.Join(f.dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].PID != dead.pid {
		t.Fatalf("after Leave: %+v, want only the stale entry of pid %d (left for Cleanup)", es, dead.pid)
	}
	// Leaving twice is harmless.
	if err := r.Leave(ctx, e); err != nil {
		t.Fatal(err)
	}
}
