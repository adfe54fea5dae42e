package pidmgr

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/snapferry/snapferry/cron/clock"
)

// Clock is the time source: registration times and the waits of KillIdle go through it
// (cron/clock).
type Clock = clock.Clock

// RealClock is the wall clock.
type RealClock = clock.System

// DefaultEditors are programs that may hold a snapferry file open for a person; KillIdle never
// stops them even when their command line names a snapferry file.
func DefaultEditors() []string {
	return []string{"vi", "vim", "nvim", "view", "vimdiff", "nano", "pico", "emacs", "mcedit", "joe",
		"ed", "less", "more", "most", "tail", "cat", "mc"}
}

// Options configure a Registry. Only Dir is required.
type Options struct {
	Dir   string        // state folder that holds snapferry-pid (created when missing)
	Table ProcessTable  // nil: NewProcessTable("/proc", nil)
	Self  int           // pid of this process; 0: os.Getpid()
	Exe   string        // path of snapferry's executable; "": os.Executable() with links resolved
	Names []string      // process names that count as snapferry; nil: the base name of Exe
	Clock Clock         // nil: RealClock
	Warn  func(string)  // receives warnings (skipped lines); nil: dropped
	Lock  time.Duration // longest wait for the registry lock; 0: 30s
	// Editors are program names never stopped by KillIdle when their command line names a
	// snapferry path (the state folder, the executable's folder, or "snapferry"). nil: DefaultEditors.
	Editors []string
}

// Registry is the PID registry in one state folder. Its methods are safe for concurrent use by
// goroutines and by processes: each call takes the file lock for its read-modify-write.
type Registry struct {
	dir, path, lockPath string
	beatDir             string // heartbeat files, one per registered process
	table               ProcessTable
	self                int
	exe                 string
	names               map[string]bool
	editors             map[string]bool
	clock               Clock
	warn                func(string)
	lockWait            time.Duration
}

// New checks the options and fills in defaults. It touches no file.
func New(o Options) (*Registry, error) {
	if o.Dir == "" {
		return nil, errors.New("PID registry: no state folder given (set --home or SNAPFERRY_HOME)")
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("PID registry: state folder %s: %w", o.Dir, err)
	}
	r := &Registry{
		dir: dir, path: filepath.Join(dir, FileName), lockPath: filepath.Join(dir, LockFileName), beatDir: filepath.Join(dir, BeatDirName),
		table: o.Table, self: o.Self, exe: o.Exe, clock: o.Clock, warn: o.Warn, lockWait: o.Lock,
	}
	if r.table == nil {
		r.table = NewProcessTable("/proc", nil)
	}
	if r.self == 0 {
		r.self = os.Getpid()
	}
	if r.exe == "" {
		exe, err := executable()
		if err != nil {
			return nil, fmt.Errorf("PID registry: find this program's executable: %w", err)
		}
		r.exe = exe
	}
	names := o.Names
	if names == nil {
		names = []string{filepath.Base(r.exe)}
	}
	r.names = toSet(names)
	editors := o.Editors
	if editors == nil {
		editors = DefaultEditors()
	}
	r.editors = toSet(editors)
	if r.clock == nil {
		r.clock = RealClock{}
	}
	if r.warn == nil {
		r.warn = func(string) {}
	}
	if r.lockWait == 0 {
		r.lockWait = 30 * time.Second
	}
	return r, nil
}

// executable is the absolute path of this program. os.Executable reads /proc/self/exe on Linux,
// which ESXi does not have; there argv[0] (searched in PATH when it has no slash) stands in.
func executable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		if exe, err = exec.LookPath(os.Args[0]); err != nil {
			return "", err
		}
		if exe, err = filepath.Abs(exe); err != nil {
			return "", err
		}
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	return exe, nil
}

func toSet(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// Path is the registry file's path.
func (r *Registry) Path() string { return r.path }

// Table is the process table the registry consults (callers use it for job liveness too).
func (r *Registry) Table() ProcessTable { return r.table }

// update runs fn on the current entries under the exclusive lock and writes what it returns
// when changed is true. fn must not block for long: every other snapferry waits meanwhile.
func (r *Registry) update(ctx context.Context, fn func([]Entry) (out []Entry, changed bool, err error)) error {
	fl, err := lockExclusive(ctx, r.lockPath, r.lockWait)
	if err != nil {
		return err
	}
	defer fl.Unlock()
	entries, err := r.read()
	if err != nil {
		return err
	}
	out, changed, err := fn(entries)
	if err != nil || !changed {
		return err
	}
	return writeFile(r.path, out)
}

// snapshotEntries reads the entries under the lock, for callers that only look.
func (r *Registry) snapshotEntries(ctx context.Context) ([]Entry, error) {
	var got []Entry
	err := r.update(ctx, func(es []Entry) ([]Entry, bool, error) {
		got = es
		return es, false, nil
	})
	return got, err
}

func (r *Registry) read() ([]Entry, error) {
	entries, warnings, err := readFile(r.path)
	for _, w := range warnings {
		r.warn(w)
	}
	return entries, err
}

// isOurs reports whether p runs a snapferry binary: the same executable path, or a name (or
// base name of argv[0]) from the configured names.
func (r *Registry) isOurs(p Process) bool {
	if p.Exe != "" && p.Exe == r.exe {
		return true
	}
	if r.names[p.Name] || (len(p.Argv) > 0 && r.names[baseName(p.Argv[0])]) {
		return true
	}
	// Linux keeps only the first 15 bytes of a name (comm), so "snapferry-linux-amd64" shows
	// as "snapferry-linux".
	if len(p.Name) == commLen {
		for n := range r.names {
			if len(n) > commLen && n[:commLen] == p.Name {
				return true
			}
		}
	}
	return false
}

const commLen = 15
