package pidmgr

import "context"

// ProcessSnapshot is one listing of the process table, answering Alive without asking the
// system again: for checking many pids at once (the job history's active jobs), where each
// Alive on a ProcessTable would run `ps -c` again on ESXi.
type ProcessSnapshot struct{ snap snapshot }

// Snapshot lists the processes of t once.
func Snapshot(ctx context.Context, t ProcessTable) (*ProcessSnapshot, error) {
	s, err := takeSnapshot(ctx, t)
	if err != nil {
		return nil, err
	}
	return &ProcessSnapshot{snap: s}, nil
}

// Alive reports whether pid ran with this start token when the snapshot was taken.
func (s *ProcessSnapshot) Alive(_ context.Context, pid int, token string) (bool, error) {
	p, ok := s.snap.byPID[pid]
	return ok && p.Token == token, nil
}

// Running reports whether any process in the snapshot matches (status uses it to tell whether
// crond runs).
func (s *ProcessSnapshot) Running(match func(Process) bool) bool {
	for _, p := range s.snap.byPID {
		if match(p) {
			return true
		}
	}
	return false
}
