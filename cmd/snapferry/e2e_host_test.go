package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron/exitcode"
	"github.com/snapferry/snapferry/cron/testkit"
	"github.com/snapferry/snapferry/transfer/sshtest"
)

// hostArgs are the flags that reach the loopback sshd for --host.
func hostArgs(s *sshtest.Server) []string {
	return append([]string{"--host", fmt.Sprintf("%s@%s", s.User, s.Addr)}, s.Flags()...)
}

// TestHostLaunchStreamsAndReturnsStatus: --host runs the command on the far side (this binary,
// deployed there), streams its output and returns its exit status; the far job is recorded there
// as remote.
func TestHostLaunchStreamsAndReturnsStatus(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	dir := t.TempDir()
	local, far := filepath.Join(dir, "local"), filepath.Join(dir, "far")
	repoDir := filepath.Join(dir, "repo")
	mustSF(t, far, 0, "init", repoDir)
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "f.txt"), []byte("from far away"), 0o644)

	r := mustSF(t, local, 0, append([]string{"backup", src, "--to", repoDir, "--home", far}, hostArgs(s)...)...)
	if !strings.Contains(r.stdout, "snapshot") {
		t.Fatalf("remote output not streamed back:\n%s", r.stdout)
	}
	// A usage error on the far side comes back as exit 2.
	mustSF(t, local, 2, append([]string{"backup", src, "--home", far, "--mode=lukewarm", "--to", repoDir}, hostArgs(s)...)...)
	// The far side recorded the job as remote.
	jobs := mustSF(t, far, 0, "jobs", "--json")
	var js []struct {
		Origin string `json:"origin"`
		Exit   *int   `json:"exit"`
	}
	if err := json.Unmarshal([]byte(jobs.stdout), &js); err != nil || len(js) == 0 {
		t.Fatalf("far history %q: %v", jobs.stdout, err)
	}
	if js[0].Origin != "remote" || js[0].Exit == nil || *js[0].Exit != 0 {
		t.Fatalf("far job: origin %s exit %v, want remote 0", js[0].Origin, js[0].Exit)
	}
	// The near side left nothing in its registry.
	if b, err := os.ReadFile(filepath.Join(local, "snapferry-pid")); err == nil && strings.Contains(string(b), "sshpipe") {
		t.Fatalf("sshpipe entry left behind:\n%s", b)
	}
}

// TestHostLaunchInterruptStopsRemoteJob: SIGINT to the near side stops the far job, which runs
// its cleanup there: it records exit 130 and leaves no registry entry and no snapshot.
func TestHostLaunchInterruptStopsRemoteJob(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	dir := t.TempDir()
	local, far := filepath.Join(dir, "local"), filepath.Join(dir, "far")
	repoDir := filepath.Join(dir, "repo")
	mustSF(t, far, 0, "init", repoDir)
	img := filepath.Join(dir, "big.img")
	sparseImage(t, img, 64<<20, seq(0, 40)...)

	args := append([]string{"backup", img, "--to", repoDir, "--home", far, "--bwlimit", "2M"}, hostArgs(s)...)
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(os.Environ(), "SNAPFERRY_HOME="+local)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the far job is registered and running its backup.
	t.Cleanup(func() { cmd.Process.Kill() })
	testkit.Eventually(t, 30*time.Second, "the far job to register and start its backup", func() bool {
		b, _ := os.ReadFile(filepath.Join(far, "snapferry-pid"))
		return strings.Contains(string(b), "remote") &&
			strings.Contains(mustSF(t, far, 0, "jobs", "--json").stdout, `"state": "active"`)
	})
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != exitcode.Interrupted {
		t.Fatalf("near side: %v, want exit 130; output:\n%s", err, out.String())
	}
	// The far job ended through its cleanup: history says 130, registry is empty.
	testkit.Eventually(t, 20*time.Second, "the far job to record its interruption", func() bool {
		return strings.Contains(mustSF(t, far, 0, "jobs", "--json").stdout, `"exit": 130`)
	})
	if b, err := os.ReadFile(filepath.Join(far, "snapferry-pid")); err == nil && strings.Contains(string(b), "remote") {
		t.Fatalf("far registry entry left behind:\n%s", b)
	}
	snaps := mustSF(t, far, 0, "snapshots", "--repo", repoDir)
	if !strings.Contains(snaps.stdout, "0 snapshots") {
		t.Fatalf("an interrupted backup committed a snapshot:\n%s", snaps.stdout)
	}
	mustSF(t, far, 0, "check", "--repo", repoDir)
}

func seq(from, to int64) []int64 {
	var s []int64
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}
