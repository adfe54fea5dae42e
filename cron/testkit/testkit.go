package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// CI reports whether the tests run under CI (the environment variable CI is set), where a
// missing tool is a failure, not a reason to skip.
func CI() bool { return os.Getenv("CI") != "" }

// RequireTool returns the path of the program name, skipping the test when it is not installed,
// or failing it under CI.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	Require(t, err == nil, "%s is not installed (.ci/run installs it): %v", name, err)
	return p
}

// Require skips the test when ok is false (a facility such as /proc or a tmpfs mount is
// missing), or fails it under CI. The message says what is missing.
func Require(t testing.TB, ok bool, format string, args ...any) {
	t.Helper()
	if ok {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if CI() {
		t.Fatalf("required under CI: %s", msg)
	}
	t.Skip(msg)
}

// Eventually waits until cond returns true, checking at once and then every few milliseconds,
// and fails the test with what when timeout passes first. It replaces fixed sleeps used to wait
// for another process or goroutine.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(timeout, cond) {
		t.Fatalf("waited %s for %s", timeout, what)
	}
}

// Poll is Eventually without the test: it reports whether cond became true within timeout.
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(wait)
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// Concurrently runs fn(0) ... fn(n-1) in n goroutines at once and waits for all. Every error is
// reported, then the test stops if there was one. fn must not call t.Fatal (it runs on another
// goroutine): it returns its failure.
func Concurrently(t testing.TB, n int, fn func(i int) error) {
	t.Helper()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = fn(i) })
	}
	wg.Wait()
	failed := false
	for _, err := range errs {
		if err != nil {
			t.Error(err)
			failed = true
		}
	}
	if failed {
		t.FailNow()
	}
}
