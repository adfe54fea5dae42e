package history

import (
	"context"
	"fmt"
)

// RecordDied appends a died record for every queued or active job whose process no longer runs,
// so the verdict is kept even after the pid is reused and later readers need no process checks.
// Run it where the PID registry is cleaned up (the start of a job command). Returns the jobs
// recorded.
//
// The whole check runs under the exclusive lock: a job that writes its end and exits between
// our read and our write would otherwise be recorded died after its done record.
func (l *Log) RecordDied(ctx context.Context, alive Liveness) ([]Job, error) {
	fl, err := l.lock(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("record died jobs in %s: %w", l.path, err)
	}
	defer fl.Unlock()
	recs, err := l.readAll()
	if err != nil {
		return nil, err
	}
	var died []Job
	for _, j := range Fold(recs) {
		if j.State != StateActive && j.State != StateQueued {
			continue
		}
		if err := markDied(ctx, &j, alive); err != nil {
			return died, err
		}
		if j.State != StateDied {
			continue
		}
		rec := Record{Job: j.ID, Name: j.Name, Origin: j.Origin, Attempt: j.Attempt, State: StateDied, Error: j.Error}
		if err := l.appendLocked(rec); err != nil {
			return died, err
		}
		died = append(died, j)
	}
	return died, nil
}
