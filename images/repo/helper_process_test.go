package repo

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/local"
)

// The test binary doubles as a backup process: with SNAPFERRY_REPO_HELPER set, TestMain runs
// runHelper instead of the tests. Kill tests start it, let it die by SIGKILL at a fault point,
// and check what it left behind.
const helperEnv = "SNAPFERRY_REPO_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		if err := runHelper(mode); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helperResult is what a finished helper prints as JSON.
type helperResult struct {
	Snapshot string `json:"snapshot"`
	New      int64  `json:"new"`
	Reused   int64  `json:"reused"`
	// Start is the helper's own process start token: empty where there is no /proc.
	Start string `json:"start"`
}

// helperJob configures one helper run (passed through the environment).
type helperJob struct {
	Repo    string
	Seed    uint64
	Blocks  int
	Source  string
	KillAt  string // a Hook* point, or "pack-upload-mid" (inside the pack's Save)
	KillNth int    // which occurrence of the point (1 = first)
	Tmp     string // TMPDIR of the helper (a test temp dir, so killed helpers leave nothing behind)
	// Wrap is a command prefix the helper runs under (scripts/esxi-profile.sh).
	Wrap []string
}

// command returns the helper process for mode: this test binary, maybe under j.Wrap.
func (j helperJob) command(mode string) *exec.Cmd {
	args := append(append([]string(nil), j.Wrap...), os.Args[0], "-test.run=^$")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = j.env(mode)
	return cmd
}

func (j helperJob) env(mode string) []string {
	return append(os.Environ(), helperEnv+"="+mode, "H_REPO="+j.Repo, "H_SEED="+strconv.FormatUint(j.Seed, 10),
		"H_BLOCKS="+strconv.Itoa(j.Blocks), "H_SOURCE="+j.Source, "H_KILL_AT="+j.KillAt,
		"H_KILL_NTH="+strconv.Itoa(j.KillNth), "TMPDIR="+j.Tmp)
}

func runHelper(mode string) error {
	ctx := context.Background()
	seed, _ := strconv.ParseUint(os.Getenv("H_SEED"), 10, 64)
	blocks, _ := strconv.Atoi(os.Getenv("H_BLOCKS"))
	nth, _ := strconv.Atoi(os.Getenv("H_KILL_NTH"))
	killAt := os.Getenv("H_KILL_AT")
	seen := map[string]int{}
	die := func(point string) {
		seen[point]++
		if point == killAt && seen[point] == max(nth, 1) {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // wait for the signal
		}
	}
	if mode == "copy" { // copy_test.go: H_REPO to H_SOURCE, dying in the target's hooks
		return runCopyHelper(ctx, die)
	}
	var be store.Backend = local.New(os.Getenv("H_REPO"))
	switch killAt {
	case "pack-upload-mid": // the spool path: a store that cannot stream, killed inside Save
		be = &dyingBackend{Backend: be, die: func() { die("pack-upload-mid") }}
	case "pack-stream-mid": // the streaming path: killed while a pack's bytes go into the store
		be = &dyingStreamBackend{Backend: be.(*local.Backend), die: func() { die("pack-stream-mid") }}
	}
	tmp, err := os.MkdirTemp("", "helper-pack-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	r, err := Open(ctx, be, Options{TempDir: tmp, Hostname: "testhost", IndexEvery: 2, Hook: die})
	if err != nil {
		return err
	}
	defer r.Close()
	lk, err := r.Lock(ctx, false)
	if err != nil {
		return err
	}
	defer lk.Unlock(ctx)
	switch mode {
	case "hold-lock":
		fmt.Println("locked")
		_, _ = io.Copy(io.Discard, os.Stdin) // hold until the parent closes stdin
		return nil
	case "prune":
		lk.Unlock(ctx) // prune takes its own exclusive lock
		rep, err := r.Prune(ctx, PruneOptions{})
		if err != nil {
			return err
		}
		return json.NewEncoder(os.Stdout).Encode(rep)
	case "backup":
		id, err := tryBackupImage(r, os.Getenv("H_SOURCE"), image{seed: seed, blocks: blocks}, time.Now())
		if err != nil {
			return err
		}
		st := r.Stats()
		return json.NewEncoder(os.Stdout).Encode(helperResult{Snapshot: id.String(), New: st.BlobsNew, Reused: st.BlobsReused,
			Start: processStart(os.Getpid())})
	}
	return fmt.Errorf("unknown helper mode %q", mode)
}

// dyingBackend kills the process halfway through writing a pack: a torn upload.
type dyingBackend struct {
	store.Backend
	die func()
}

func (d *dyingBackend) Save(ctx context.Context, h store.Handle, rd io.Reader) error {
	if h.Kind != store.KindData {
		return d.Backend.Save(ctx, h, rd)
	}
	return d.Backend.Save(ctx, h, &dyingReader{r: rd, die: d.die})
}

// dyingStreamBackend kills the process halfway through streaming a pack into the store.
type dyingStreamBackend struct {
	*local.Backend
	die func()
}

func (d *dyingStreamBackend) SaveStream(ctx context.Context, k store.Kind) (store.Pending, error) {
	p, err := d.Backend.SaveStream(ctx, k)
	if err != nil {
		return nil, err
	}
	return &dyingPending{Pending: p, die: d.die}, nil
}

type dyingPending struct {
	store.Pending
	n   int
	die func()
}

// Write tears the pack once its bytes pass 20 000: half of this write lands, then die (which
// kills on the nth pack).
func (d *dyingPending) Write(p []byte) (int, error) {
	if d.n <= 20_000 && d.n+len(p) > 20_000 {
		if _, err := d.Pending.Write(p[:len(p)/2]); err != nil {
			return 0, err
		}
		d.die()
		n, err := d.Pending.Write(p[len(p)/2:])
		d.n += len(p)
		return len(p)/2 + n, err
	}
	n, err := d.Pending.Write(p)
	d.n += n
	return n, err
}

type dyingReader struct {
	r    io.Reader
	n    int
	die  func()
	done bool
}

func (d *dyingReader) Read(p []byte) (int, error) {
	if d.n > 20_000 && !d.done {
		d.done = true
		d.die()
	}
	if len(p) > 8192 {
		p = p[:8192]
	}
	n, err := d.r.Read(p)
	d.n += n
	return n, err
}

// runBackup runs a helper backup to completion and returns its result.
func runBackup(t *testing.T, j helperJob) helperResult {
	t.Helper()
	var res helperResult
	runHelperJSON(t, "backup", j, &res)
	return res
}

// runHelperJSON runs a helper to completion and decodes its JSON output into v.
func runHelperJSON(t *testing.T, mode string, j helperJob, v any) {
	t.Helper()
	cmd := j.command(mode)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper %s %+v: %v\n%s", mode, j, err, stderrOf(err))
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("helper output %q: %v", out, err)
	}
}

// runKilled runs a helper that must die by SIGKILL.
func runKilled(t *testing.T, mode string, j helperJob) {
	t.Helper()
	cmd := j.command(mode)
	out, err := cmd.CombinedOutput()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if err == nil || !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper with kill point %s: want death by SIGKILL, got %v\n%s", j.KillAt, err, out)
	}
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// startLockHolder starts a helper that holds a shared lock until stdin closes.
func startLockHolder(t *testing.T, repoDir string) (*exec.Cmd, io.WriteCloser) {
	t.Helper()
	cmd := helperJob{Repo: repoDir, Tmp: t.TempDir()}.command("hold-lock")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "locked" {
		t.Fatalf("lock holder said %q, %v", line, err)
	}
	return cmd, stdin
}

func localBackend(dir string) store.Backend { return local.New(dir) }
