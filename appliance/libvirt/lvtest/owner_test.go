package lvtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A daemon whose owner dies without stopping it (a test binary killed by go test's -timeout)
// is stopped by start.sh's watcher: no libvirtd is left running.
func TestDaemonStopsWhenOwnerDies(t *testing.T) {
	owner := exec.Command("sleep", "300")
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { owner.Process.Kill(); owner.Wait() })
	dir, err := os.MkdirTemp("", "sflv")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	d, err := startOwned(dir, owner.Process.Pid)
	if err != nil {
		Unavailable(t, err)
	}
	defer d.Stop() // only if the watcher failed
	b, err := os.ReadFile(filepath.Join(dir, "libvirtd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		t.Fatalf("libvirtd pid %q is not running", b)
	}
	owner.Process.Kill()
	owner.Wait()
	for deadline := time.Now().Add(60 * time.Second); syscall.Kill(pid, 0) == nil; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("libvirtd %d still runs 60 s after its owner died", pid)
		}
	}
}
