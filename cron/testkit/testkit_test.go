package testkit

import (
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
	fatal, skipped bool
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Fatalf(string, ...any) { f.fatal = true; panic("fatal") }
func (f *fakeTB) Skip(...any)           { f.skipped = true; panic("skip") }
