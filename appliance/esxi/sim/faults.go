package sim

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Faults are the failures the simulated host produces on demand. They are read from
// ROOT/.esxisim/faults (one `name` or `name=value` per line, '#' comments) and from the env var
// ESXISIM_FAULTS (the same entries separated by commas), on every command.
//
//	snapshot-create-fail        snapshot.create fails with a fault
//	snapshot-remove-fail[=N]    snapshot.remove/removeall fail (the next N times; always without N)
//	tools-not-running           VMware Tools is not running in any guest (shutdown refused)
//	slow-tasks=DURATION         snapshot tasks finish only after DURATION (callers must poll)
//	shutdown-delay=DURATION     a guest shutdown takes this long (default 300ms)
//	datastore-full[=NAME]       the datastore (every one without NAME) has no free space
type Faults struct {
	SnapshotCreateFail bool
	SnapshotRemoveFail int // 0 none, -1 always, N > 0 the next N removals
	ToolsNotRunning    bool
	SlowTasks          time.Duration
	ShutdownDelay      time.Duration
	DatastoreFull      []string // datastore names; "*" means all
}

// defaultShutdownDelay is how long a guest takes to shut down when no fault says otherwise: long
// enough that callers must poll power.getstate, as on a real host.
const defaultShutdownDelay = 300 * time.Millisecond

func (h *Host) faultsPath() string { return filepath.Join(h.meta, "faults") }

// SetFaults replaces the faults file. The zero Faults clears every fault.
func (h *Host) SetFaults(f Faults) error {
	var lines []string
	if f.SnapshotCreateFail {
		lines = append(lines, "snapshot-create-fail")
	}
	switch {
	case f.SnapshotRemoveFail < 0:
		lines = append(lines, "snapshot-remove-fail")
	case f.SnapshotRemoveFail > 0:
		lines = append(lines, "snapshot-remove-fail="+strconv.Itoa(f.SnapshotRemoveFail))
	}
	if f.ToolsNotRunning {
		lines = append(lines, "tools-not-running")
	}
	if f.SlowTasks > 0 {
		lines = append(lines, "slow-tasks="+f.SlowTasks.String())
	}
	if f.ShutdownDelay > 0 {
		lines = append(lines, "shutdown-delay="+f.ShutdownDelay.String())
	}
	for _, d := range f.DatastoreFull {
		if d == "*" {
			lines = append(lines, "datastore-full")
		} else {
			lines = append(lines, "datastore-full="+d)
		}
	}
	// A new fault set starts its counters afresh.
	if err := h.do(func(s *session) error { s.st.FaultUses = map[string]int{}; return nil }); err != nil {
		return err
	}
	return writeFileAtomic(h.faultsPath(), []byte(strings.Join(lines, "\n")+"\n"))
}

func (h *Host) loadFaults() (Faults, error) {
	var entries []string
	b, err := os.ReadFile(h.faultsPath())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Faults{}, fmt.Errorf("read faults: %w", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		entries = append(entries, l)
	}
	entries = append(entries, strings.Split(h.getenv("ESXISIM_FAULTS"), ",")...)
	return parseFaults(entries)
}

func parseFaults(entries []string) (Faults, error) {
	f := Faults{ShutdownDelay: defaultShutdownDelay}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" || strings.HasPrefix(e, "#") {
			continue
		}
		name, val, hasVal := strings.Cut(e, "=")
		var err error
		switch name {
		case "snapshot-create-fail":
			f.SnapshotCreateFail = true
		case "snapshot-remove-fail":
			f.SnapshotRemoveFail = -1
			if hasVal {
				f.SnapshotRemoveFail, err = strconv.Atoi(val)
			}
		case "tools-not-running":
			f.ToolsNotRunning = true
		case "slow-tasks":
			f.SlowTasks, err = time.ParseDuration(val)
		case "shutdown-delay":
			f.ShutdownDelay, err = time.ParseDuration(val)
		case "datastore-full":
			if !hasVal {
				val = "*"
			}
			f.DatastoreFull = append(f.DatastoreFull, val)
		default:
			return Faults{}, fmt.Errorf("fault %q: unknown (known: snapshot-create-fail, snapshot-remove-fail[=N], tools-not-running, slow-tasks=D, shutdown-delay=D, datastore-full[=NAME])", e)
		}
		if err != nil {
			return Faults{}, fmt.Errorf("fault %q: bad value: %w", e, err)
		}
	}
	return f, nil
}

// full reports whether the datastore-full fault covers a datastore.
func (f Faults) full(ds string) bool {
	return slices.Contains(f.DatastoreFull, "*") || slices.Contains(f.DatastoreFull, ds)
}

// fireRemoveFail decides whether this snapshot removal fails, counting uses of a limited fault.
func (s *session) fireRemoveFail() bool {
	n := s.faults.SnapshotRemoveFail
	if n == 0 {
		return false
	}
	if n < 0 {
		return true
	}
	if s.st.FaultUses["snapshot-remove-fail"] >= n {
		return false
	}
	s.st.FaultUses["snapshot-remove-fail"]++
	return true
}
