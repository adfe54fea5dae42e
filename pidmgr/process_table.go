package pidmgr

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// Process is what a ProcessTable knows about one running process.
type Process struct {
	PID     int      `json:"pid"`
	PPID    int      `json:"ppid,omitempty"` // parent pid; 0 when the table cannot tell (ESXi `ps -c`)
	Name    string   `json:"name"`           // short name: the kernel's comm on Linux, the WorldName on ESXi
	Exe     string   `json:"exe,omitempty"`  // absolute path of the executable; "" when unknown or not readable
	Argv    []string `json:"-"`              // command line; on ESXi split on spaces from `ps -c` (quoting is lost)
	Cmdline string   `json:"cmdline"`        // command line as one string, for printing
	// Token tells this process apart from a later one that gets the same pid. Two observations
	// of the same pid with equal tokens are the same process (see each table for how strong
	// that promise is).
	Token string `json:"token"`
	// StartOrder orders processes by start within one table: larger started later; 0 unknown.
	// Linux: start ticks since boot. ESXi: the cartel id, which ESXi hands out in increasing
	// order. KillIdle uses it so that of two launches only the newer stops the older.
	StartOrder uint64 `json:"-"`
}

// ProcessTable is the source of process facts. Implementations: gopsutilTable (Linux, /proc)
// and PSTable (ESXi, `ps -c`). Zombies count as gone: they have exited and only wait to be reaped.
type ProcessTable interface {
	// Processes lists the running processes. Processes that vanish while being read are left out.
	Processes(ctx context.Context) ([]Process, error)
	// Lookup returns the process with this pid, or ErrNoProcess.
	Lookup(ctx context.Context, pid int) (Process, error)
	// Alive reports whether pid still runs and still is the process with this start token.
	Alive(ctx context.Context, pid int, token string) (bool, error)
}

// ErrNoProcess is returned by Lookup when no process has the pid.
var ErrNoProcess = errors.New("no such process")

// NewProcessTable chooses the process table for this host at run time: gopsutil when procRoot
// (normally "/proc") holds a /self entry, else the `ps -c` parser, because ESXi has no /proc/PID.
// procRoot only decides (tests pass an empty folder to get the ESXi behaviour); gopsutil itself
// reads /proc. psCommand is the ps invocation for that case; nil means {"ps", "-c"}.
func NewProcessTable(procRoot string, psCommand []string) ProcessTable {
	if procRoot == "" {
		procRoot = "/proc"
	}
	if _, err := os.Stat(filepath.Join(procRoot, "self", "stat")); err == nil {
		return gopsutilTable{}
	}
	return &PSTable{Command: psCommand}
}

// aliveFromLookup implements Alive on top of Lookup for every table.
func aliveFromLookup(ctx context.Context, t ProcessTable, pid int, token string) (bool, error) {
	p, err := t.Lookup(ctx, pid)
	if errors.Is(err, ErrNoProcess) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return p.Token == token, nil
}

// snapshot is one listing of the process table indexed by pid, with the parent/child relation.
type snapshot struct {
	byPID    map[int]Process
	children map[int][]int
}

// oneLookup marks a table whose Lookup reads one process (Linux /proc/PID) instead of listing
// every process (ESXi's ps -c lists them all on each Lookup).
type oneLookup interface{ lookupReadsOne() }

// maxLookups bounds the per-entry lookups of snapshotFor; past it one listing is cheaper.
const maxLookups = 32

// snapshotFor reads just enough of the process table to judge the entries es: each entry's pid
// by Lookup when the table reads one process per Lookup and the entries are few, else the whole
// table once. Every job start judges the registry (cleanup, shutdown); with hundreds of processes
// on the host, listing them all read ~1000 /proc files each time for a registry of one or two
// entries, most of the wall time of a one-file restore. The result knows no parent/child
// relations beyond the entries: callers that walk the tree (KillIdle) use takeSnapshot.
func snapshotFor(ctx context.Context, t ProcessTable, es []Entry) (snapshot, error) {
	if _, ok := t.(oneLookup); !ok || len(es) > maxLookups {
		return takeSnapshot(ctx, t)
	}
	s := snapshot{byPID: make(map[int]Process, len(es)), children: map[int][]int{}}
	for _, e := range es { // none: nothing to read
		p, err := t.Lookup(ctx, e.PID)
		if errors.Is(err, ErrNoProcess) {
			continue
		}
		if err != nil {
			return snapshot{}, err
		}
		s.byPID[p.PID] = p
	}
	return s, nil
}

func takeSnapshot(ctx context.Context, t ProcessTable) (snapshot, error) {
	ps, err := t.Processes(ctx)
	if err != nil {
		return snapshot{}, err
	}
	s := snapshot{byPID: make(map[int]Process, len(ps)), children: map[int][]int{}}
	for _, p := range ps {
		s.byPID[p.PID] = p
		if p.PPID > 0 && p.PPID != p.PID {
			s.children[p.PPID] = append(s.children[p.PPID], p.PID)
		}
	}
	return s, nil
}

// ancestors returns the pids above pid (parent, grandparent, ...). The walk stops at a loop or
// an unknown parent, so a table without ppids yields none.
func (s snapshot) ancestors(pid int) map[int]bool {
	out := map[int]bool{}
	for cur := s.byPID[pid].PPID; cur > 0 && !out[cur] && cur != pid; {
		out[cur] = true
		p, ok := s.byPID[cur]
		if !ok {
			break
		}
		cur = p.PPID
	}
	return out
}

// descendants returns every pid below pid, parents before their children.
func (s snapshot) descendants(pid int) []int {
	var out []int
	seen := map[int]bool{pid: true}
	queue := []int{pid}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, c := range s.children[cur] {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
				queue = append(queue, c)
			}
		}
	}
	return out
}

// entryState tells how a registry entry relates to the process table.
func (s snapshot) entryState(e Entry) State {
	p, ok := s.byPID[e.PID]
	switch {
	case !ok:
		return StateGone
	case p.Token != e.Token:
		return StateRecycled
	default:
		return StateLive
	}
}

// State of a registry entry compared with the running processes.
type State string

const (
	StateLive     State = "live"     // the registered process still runs
	StateGone     State = "gone"     // no process has the pid any more
	StateRecycled State = "recycled" // another process has the pid now (start token differs)
)

// baseName is filepath.Base that keeps "" for "" (Base would say ".").
func baseName(p string) string {
	if p == "" {
		return ""
	}
	return filepath.Base(p)
}

// cleanExe strips the marker Linux appends to /proc/PID/exe when the binary was replaced or
// deleted after the process started (an upgrade), so the old process still counts as snapferry.
func cleanExe(p string) string { return strings.TrimSuffix(p, " (deleted)") }
