package appliance

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron/testkit"
)

func TestLockVMExcludesSecondJob(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	l1, err := LockVM(ctx, dir, "12", 0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = LockVM(ctx, dir, "12", 300*time.Millisecond)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: got %v, want ErrLocked", err)
	}
	if time.Since(start) < 250*time.Millisecond {
		t.Fatalf("second lock gave up after %s, want it to wait", time.Since(start))
	}
	if !strings.Contains(err.Error(), "pid ") {
		t.Fatalf("error does not name the holder: %v", err)
	}
	other, err := LockVM(ctx, dir, "13", 0)
	if err != nil {
		t.Fatalf("lock of another VM: %v", err)
	}
	_ = other.Unlock()

	go func() {
		time.Sleep(200 * time.Millisecond)
		_ = l1.Unlock()
	}()
	l2, err := LockVM(ctx, dir, "12", 5*time.Second)
	if err != nil {
		t.Fatalf("waiting lock: %v", err)
	}
	_ = l2.Unlock()
}

// A lock held by a killed process is free at once: flock dies with its holder.
func TestLockVMReleasedWhenHolderDies(t *testing.T) {
	testkit.RequireTool(t, "flock")
	dir := t.TempDir()
	path := dir + "/vm-7.lock"
	cmd := exec.Command("flock", path, "sleep", "30")
	// Own process group: the lock fd is inherited by sleep, so the whole group must die.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, "flock(1) to take the lock", func() bool {
		l, err := LockVM(context.Background(), dir, "7", 0)
		if errors.Is(err, ErrLocked) {
			return true
		}
		if err != nil {
			t.Fatal(err)
		}
		_ = l.Unlock() // we were first: let flock(1) have it
		return false
	})
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
	// Wait reaps flock(1) only; its sleep child, which shares the lock, dies a moment later.
	l, err := LockVM(context.Background(), dir, "7", 5*time.Second)
	if err != nil {
		t.Fatalf("lock after holder died: %v", err)
	}
	_ = l.Unlock()
}

func TestLockFileKey(t *testing.T) {
	for in, want := range map[string]string{
		"12":          "12",
		"web 01":      "web%2001",
		"a/../b":      "a%2f%2e%2e%2fb",
		"db [prod] 2": "db%20%5bprod%5d%202",
		"web%2001":    "web%252001",
	} {
		if got := lockFileKey(in); got != want {
			t.Errorf("lockFileKey(%q) = %q, want %q", in, got, want)
		}
	}
}
