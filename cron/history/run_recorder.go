package history

import (
	"context"
	"time"
)

// Counts are a job's byte counts (see Record).
type Counts struct{ Read, Sent, Stored int64 }

// Run writes the records of one attempt of one job, so callers state only what changes.
type Run struct {
	log  *Log
	base Record // identity of the attempt: job, name, origin, attempt, pid, token, vms, paths
}

// Start appends the active record of an attempt (base.State and base.Time are ignored) and
// returns the Run that writes its later records.
func (l *Log) Start(ctx context.Context, base Record) (*Run, error) {
	base.State, base.Time, base.Exit, base.Error = StateActive, time.Time{}, nil, ""
	if err := l.Append(ctx, base); err != nil {
		return nil, err
	}
	base.BytesRead, base.BytesSent, base.BytesStored = 0, 0, 0
	return &Run{log: l, base: base}, nil
}

// Queue appends a queued record: the attempt waits (a retry's delay) in the process base names.
func (l *Log) Queue(ctx context.Context, base Record) error {
	base.State, base.Time, base.Exit, base.Error = StateQueued, time.Time{}, nil, ""
	return l.Append(ctx, base)
}

// Progress records the byte counts so far; the job stays active.
func (r *Run) Progress(ctx context.Context, c Counts) error {
	return r.log.Append(ctx, r.with(StateActive, c))
}

// End records the end of the attempt with its exit status, the cause when it failed (nil when
// not) and the final byte counts.
func (r *Run) End(ctx context.Context, exit int, cause error, c Counts) error {
	rec := r.with(StateDone, c)
	rec.Exit = ExitCode(exit)
	if cause != nil {
		rec.Error = cause.Error()
	}
	return r.log.Append(ctx, rec)
}

// with is the attempt's identity (without the lists, which the first record carried) plus state
// and counts.
func (r *Run) with(s State, c Counts) Record {
	rec := Record{Job: r.base.Job, Attempt: r.base.Attempt, Name: r.base.Name, Origin: r.base.Origin,
		PID: r.base.PID, Token: r.base.Token, State: s}
	rec.BytesRead, rec.BytesSent, rec.BytesStored = c.Read, c.Sent, c.Stored
	return rec
}
