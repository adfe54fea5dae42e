package testkit

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	var n atomic.Int32
	go func() {
		for range 3 {
			time.Sleep(time.Millisecond)
			n.Add(1)
		}
	}()
	if !Poll(10*time.Second, func() bool { return n.Load() == 3 }) {
		t.Fatal("Poll gave up on a condition that became true")
	}
	if Poll(20*time.Millisecond, func() bool { return false }) {
		t.Fatal("Poll reported a condition that never held")
	}
}

func TestConcurrentlyRunsAllAndReportsEveryError(t *testing.T) {
	var ran atomic.Int32
	Concurrently(t, 8, func(int) error { ran.Add(1); return nil })
	if ran.Load() != 8 {
		t.Fatalf("ran %d of 8", ran.Load())
	}
	f := &fakeTB{TB: t}
	func() {
		defer func() { recover() }()
		Concurrently(f, 4, func(i int) error {
			if i%2 == 1 {
				return fmt.Errorf("worker %d failed", i)
			}
			return nil
		})
	}()
	if f.errors != 2 || !f.failedNow {
		t.Fatalf("reported %d errors (want 2), stopped %v (want true)", f.errors, f.failedNow)
	}
}

func TestRequireToolFindsSh(t *testing.T) {
	if p := RequireTool(t, "sh"); p == "" {
		t.Fatal("no path for sh")
	}
}

func TestRequireSkipsOrFails(t *testing.T) {
	// A fake TB records what Require does with a missing facility.
	f := &fakeTB{TB: t}
	func() {
		defer func() { recover() }()
		Require(f, false, "no %s", "thing")
	}()
	if CI() != f.fatal || CI() == f.skipped {
		t.Fatalf("CI=%v: fatal=%v skipped=%v", CI(), f.fatal, f.skipped)
	}
}

type fakeTB struct {
	testing.TB
	fatal, skipped, failedNow bool
	errors                    int
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Fatalf(string, ...any) { f.fatal = true; panic("fatal") }
func (f *fakeTB) Skip(...any)           { f.skipped = true; panic("skip") }
func (f *fakeTB) Error(...any)          { f.errors++ }
func (f *fakeTB) FailNow()              { f.failedNow = true; panic("fail now") }
