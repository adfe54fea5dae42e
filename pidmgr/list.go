package pidmgr

import (
	"context"
	"fmt"
)

// Status is a registry entry with what the process table says about it now.
type Status struct {
	Entry
	State   State   `json:"state"`            // live, gone or recycled
	Process Process `json:"process,omitzero"` // the process now holding the pid (zero when gone)
	// Heartbeat is the entry's last heartbeat (command, progress, when it last made progress);
	// nil when it has none or the file belongs to another process (token differs).
	Heartbeat *Heartbeat `json:"heartbeat,omitempty"`
}

// List returns every entry in file order with its state, for `snapferry pid list` and `status`.
// It changes nothing; stale entries stay until Cleanup or Shutdown.
func (r *Registry) List(ctx context.Context) ([]Status, error) {
	snap, err := takeSnapshot(ctx, r.table)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", r.path, err)
	}
	es, err := r.snapshotEntries(ctx)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", r.path, err)
	}
	out := make([]Status, 0, len(es))
	for _, e := range es {
		st := Status{Entry: e, State: snap.entryState(e), Process: snap.byPID[e.PID]}
		if hb, ok := r.readBeat(e.PID); ok && hb.Token == e.Token {
			st.Heartbeat = &hb
		}
		out = append(out, st)
	}
	return out, nil
}
