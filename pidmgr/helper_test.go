package pidmgr

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests run real processes: the test binary re-executes itself as a helper, from a hard link
// (or copy) named "snapferry" in a per-test folder, so the kernel reports the name snapferry
// and a unique executable path. Helpers match snapferry processes by that path only (Names is
// empty): other people on the machine may run real snapferry binaries, and a test must never
// signal those.

const helperEnv = "PIDMGR_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helperMain(mode))
	}
	os.Exit(m.Run())
}

// helperMain runs inside a helper process. Env: PIDMGR_DIR (state folder), PIDMGR_TYPE,
// PIDMGR_JOB, PIDMGR_CHILD=1 (start `sleep 300` as a child first), PIDMGR_IGNORE_TERM=1,
// PIDMGR_DRYRUN=1, PIDMGR_SPAWN_KILLER=1 (start a kill-idle helper as a child and relay its
// output). Protocol on stdout: "child PID", then "ready PID"; the process then waits for stdin to
// close. Mode "killidle" prints the JSON report instead.
func helperMain(mode string) int {
	ctx := context.Background()
	reg, err := New(Options{Dir: os.Getenv("PIDMGR_DIR"), Names: []string{}, Lock: 20 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	switch mode {
	case "register":
		if os.Getenv("PIDMGR_IGNORE_TERM") == "1" {
			signal.Ignore(syscall.SIGTERM)
		} else {
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGTERM)
			go func() {
				<-sig
				_ = reg.Shutdown(ctx)
				os.Exit(143)
			}()
		}
		if os.Getenv("PIDMGR_CHILD") == "1" {
			c := exec.Command("sleep", "300")
			if err := c.Start(); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 2
			}
			fmt.Printf("child %d\n", c.Process.Pid)
		}
		var pulse *Pulse
		if cmd := os.Getenv("PIDMGR_COMMAND"); cmd != "" {
			// A job as jobrun starts it: Begin (no kill-idle) writes the first heartbeat.
			rep, err := reg.Begin(ctx, BeginOptions{Type: Type(os.Getenv("PIDMGR_TYPE")), JobID: os.Getenv("PIDMGR_JOB"),
				Argv: os.Args, Command: cmd, KeepWhileBusy: os.Getenv("PIDMGR_KEEP_BUSY") == "1"})
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 2
			}
			pulse = rep.Pulse
		} else if _, err := reg.Register(ctx, Type(os.Getenv("PIDMGR_TYPE")), os.Getenv("PIDMGR_JOB"), os.Args); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		fmt.Printf("ready %d\n", os.Getpid())
		if os.Getenv("PIDMGR_SPAWN_KILLER") == "1" {
			c := exec.Command(os.Args[0])
			c.Env = append(os.Environ(), helperEnv+"=killidle")
			c.Stdout, c.Stderr = os.Stdout, os.Stderr
			if err := c.Run(); err != nil {
				fmt.Fprintln(os.Stderr, "killer:", err)
				return 2
			}
		}
		// "beat N" lines make the process report progress N; it ends when stdin closes.
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			if n, ok := strings.CutPrefix(in.Text(), "beat "); ok && pulse != nil {
				p, _ := strconv.ParseInt(n, 10, 64)
				if err := pulse.Beat(p); err != nil {
					fmt.Fprintln(os.Stderr, err)
					return 2
				}
				fmt.Println("beat")
			}
		}
		return 0
	case "killidle":
		// A user launch as the CLI makes it: Begin (cleanup, kill-idle, register), then Shutdown.
		// The grace period is long (a loaded machine may take a while to run a SIGTERM handler)
		// unless PIDMGR_GRACE sets it.
		grace := 10 * time.Second
		if g, err := time.ParseDuration(os.Getenv("PIDMGR_GRACE")); err == nil {
			grace = g
		}
		rep, err := reg.Begin(ctx, BeginOptions{Type: TypeUser, JobID: "job-killer", Argv: os.Args, KillIdle: true,
			Kill: KillOptions{DryRun: os.Getenv("PIDMGR_DRYRUN") == "1", Grace: grace}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		if err := reg.Shutdown(ctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		out := make([]helperDecision, 0, len(rep.Kill.Decisions))
		for _, d := range rep.Kill.Decisions {
			out = append(out, helperDecision{PID: d.Process.PID, Action: d.Action, Reason: d.Reason})
		}
		b, _ := json.Marshal(out)
		fmt.Printf("report %s\n", b)
		return 0
	case "esxi":
		// Runs with /proc hidden: the registry must pick the ps -c table on its own.
		fmt.Printf("table %T\n", reg.Table())
		if _, err := reg.Begin(ctx, BeginOptions{Type: TypeCron, JobID: "job-esxi", Argv: os.Args}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		st, err := reg.List(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		for _, s := range st {
			fmt.Printf("entry %d %s %s %s\n", s.PID, s.Type, s.State, s.Token)
		}
		if err := reg.Shutdown(ctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		fmt.Println("done")
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
	return 2
}

type helperDecision struct {
	PID    int
	Action Action
	Reason string
}

// fixture is one test's state folder and helper binary.
type fixture struct {
	t   *testing.T
	dir string // state folder
	exe string // .../snapferry
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "snapferry")
	if err := os.Link(self, bin); err != nil {
		data, err := os.ReadFile(self)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &fixture{t: t, dir: filepath.Join(t.TempDir(), "state"), exe: bin}
}

// registry is the test process's own view: snapferry is the helper binary, matched by path.
func (f *fixture) registry(opts ...func(*Options)) *Registry {
	f.t.Helper()
	o := Options{Dir: f.dir, Exe: f.exe, Names: []string{}, Lock: 20 * time.Second, Warn: func(s string) { f.t.Log("warning:", s) }}
	for _, fn := range opts {
		fn(&o)
	}
	r, err := New(o)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

// launch returns an option that makes the registry act for a process started now, standing for
// a new launch: KillIdle only stops processes older than the launch it runs for.
func (f *fixture) launch() func(*Options) {
	f.t.Helper()
	time.Sleep(30 * time.Millisecond) // a later start tick (10ms) than every process before
	c := exec.Command("sleep", "300")
	if err := c.Start(); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
	return func(o *Options) { o.Self = c.Process.Pid }
}

// helper is a running helper process.
type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines *bufio.Scanner
	pid   int
	child int // pid of its `sleep` child, if asked for
	done  chan error
}

// start launches a helper; env entries of the form "ARG=x" become command-line arguments (the
// helper ignores them; they show in its argv as a user's arguments would).
func (f *fixture) start(mode string, env ...string) *helper {
	f.t.Helper()
	cmd := exec.Command(f.exe)
	var rest []string
	for _, e := range env {
		if a, ok := strings.CutPrefix(e, "ARG="); ok {
			cmd.Args = append(cmd.Args, a)
		} else {
			rest = append(rest, e)
		}
	}
	env = rest
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "PIDMGR_DIR="+f.dir)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr // not t.Log: a helper may outlive the test by a moment
	stdin, err := cmd.StdinPipe()
	if err != nil {
		f.t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		f.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	h := &helper{cmd: cmd, stdin: stdin, lines: bufio.NewScanner(stdout), pid: cmd.Process.Pid, done: make(chan error, 1)}
	f.t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		if h.child > 0 {
			_ = syscall.Kill(h.child, syscall.SIGKILL)
		}
	})
	return h
}

// startReady launches a registering helper of type typ and waits until it is registered.
func (f *fixture) startReady(typ Type, job string, env ...string) *helper {
	f.t.Helper()
	h := f.start("register", append(env, "PIDMGR_TYPE="+string(typ), "PIDMGR_JOB="+job)...)
	for {
		line := h.next(f.t)
		if pid, ok := strings.CutPrefix(line, "child "); ok {
			h.child, _ = strconv.Atoi(pid)
			f.t.Cleanup(func() { _ = syscall.Kill(h.child, syscall.SIGKILL) })
			continue
		}
		if strings.HasPrefix(line, "ready ") {
			break
		}
		f.t.Fatalf("helper %d: unexpected line %q", h.pid, line)
	}
	go func() { h.done <- h.cmd.Wait() }()
	return h
}

// next reads the helper's next stdout line, failing the test if the helper ends first.
func (h *helper) next(t *testing.T) string {
	t.Helper()
	if !h.lines.Scan() {
		t.Fatalf("helper %d ended without output: %v", h.pid, h.lines.Err())
	}
	return h.lines.Text()
}

// beat makes a helper started with PIDMGR_COMMAND report progress n and waits until it has.
func (h *helper) beat(t *testing.T, n int64) {
	t.Helper()
	if _, err := fmt.Fprintf(h.stdin, "beat %d\n", n); err != nil {
		t.Fatal(err)
	}
	if line := h.next(t); line != "beat" {
		t.Fatalf("helper %d: %q after beat", h.pid, line)
	}
}

// waitExit waits for the helper to end (it must be reaped by us, else it stays a zombie).
func (h *helper) waitExit(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case <-h.done:
	case <-time.After(within):
		t.Fatalf("helper %d still runs after %s", h.pid, within)
	}
}

// killIdle runs a separate user launch (Cleanup + KillIdle) and returns its decisions by pid.
func (f *fixture) killIdle(env ...string) map[int]helperDecision {
	f.t.Helper()
	time.Sleep(30 * time.Millisecond) // a later start tick (10ms) than the processes it judges
	h := f.start("killidle", env...)
	line := h.next(f.t)
	js, ok := strings.CutPrefix(line, "report ")
	if !ok {
		f.t.Fatalf("kill-idle helper printed %q", line)
	}
	if err := h.cmd.Wait(); err != nil {
		f.t.Fatalf("kill-idle helper: %v", err)
	}
	return decodeDecisions(f.t, js)
}

func decodeDecisions(t *testing.T, js string) map[int]helperDecision {
	t.Helper()
	var ds []helperDecision
	if err := json.Unmarshal([]byte(js), &ds); err != nil {
		t.Fatalf("decode report %q: %v", js, err)
	}
	out := map[int]helperDecision{}
	for _, d := range ds {
		out[d.PID] = d
	}
	return out
}

// running reports whether pid runs and is not a zombie.
func running(t *testing.T, pid int) bool {
	t.Helper()
	_, err := readLinuxProcess(context.Background(), pid)
	return err == nil
}

// requireLinuxProc skips where /proc is missing (these tests drive the gopsutil table).
func requireLinuxProc(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("/proc is required for process tests: %v", err)
		}
		t.Skip("no /proc")
	}
}
