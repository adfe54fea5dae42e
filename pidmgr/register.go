package pidmgr

import (
	"context"
	"fmt"
)

// Register adds this process to the registry as a process of type typ running job jobID ("" for
// none) with command line argv. Its start token comes from the process table, so later checks
// compare like with like. A stale entry with this pid (a recycled pid) is replaced.
func (r *Registry) Register(ctx context.Context, typ Type, jobID string, argv []string) (Entry, error) {
	if _, err := ParseType(string(typ)); err != nil {
		return Entry{}, fmt.Errorf("register pid %d: %w", r.self, err)
	}
	if jobID != "" {
		if err := validToken("job id", jobID); err != nil {
			return Entry{}, fmt.Errorf("register pid %d: %w", r.self, err)
		}
	}
	me, err := r.table.Lookup(ctx, r.self)
	if err != nil {
		return Entry{}, fmt.Errorf("register pid %d: look up this process: %w", r.self, err)
	}
	e := Entry{PID: me.PID, Type: typ, Token: me.Token, JobID: jobID,
		Registered: r.clock.Now().UTC().Truncate(1e9), Argv: append([]string(nil), argv...)}
	err = r.update(ctx, func(es []Entry) ([]Entry, bool, error) {
		out := removeWhere(es, func(x Entry) bool { return x.PID == e.PID })
		return append(out, e), true, nil
	})
	if err != nil {
		return Entry{}, fmt.Errorf("register pid %d in %s: %w", r.self, r.path, err)
	}
	return e, nil
}

// Shutdown is phase 3: it removes this process and every entry whose process no longer runs
// (gone or recycled), and deletes the file when nothing is left. It is idempotent and safe to
// call from a defer and from a SIGINT/SIGTERM handler at once (the second call finds nothing to
// do). If the process table cannot be read, it still removes this process.
func (r *Registry) Shutdown(ctx context.Context) error {
	self := r.selfPID(ctx)
	var snapErr error
	err := r.update(ctx, func(es []Entry) ([]Entry, bool, error) {
		var snap snapshot
		snap, snapErr = snapshotFor(ctx, r.table, removeWhere(es, func(x Entry) bool { return x.PID == self || x.PID == r.self }))
		out := removeWhere(es, func(x Entry) bool {
			return x.PID == self || x.PID == r.self || (snapErr == nil && snap.entryState(x) != StateLive)
		})
		r.pruneBeats(out)
		return out, len(out) != len(es), nil
	})
	if err != nil {
		return fmt.Errorf("shutdown: remove pid %d from %s: %w", r.self, r.path, err)
	}
	if snapErr != nil {
		return fmt.Errorf("shutdown: removed pid %d but kept other entries: %w", r.self, snapErr)
	}
	return nil
}

// selfPID is this process's pid as the process table lists it: the same as os.Getpid() except
// on ESXi if getpid() yields a world id rather than the cartel id.
func (r *Registry) selfPID(ctx context.Context) int {
	if me, err := r.table.Lookup(ctx, r.self); err == nil {
		return me.PID
	}
	return r.self
}

// removeWhere returns the entries for which drop is false, in their order.
func removeWhere(es []Entry, drop func(Entry) bool) []Entry {
	out := make([]Entry, 0, len(es))
	for _, e := range es {
		if !drop(e) {
			out = append(out, e)
		}
	}
	return out
}
