package cron

import (
	"context"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// needTool returns the path of a tool a test needs; missing, the test skips locally but fails
// under CI, where .ci/run installs it.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required under CI (install it in .ci/run): %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return p
}

func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustJob(t *testing.T, name, sched string, args ...string) Job {
	t.Helper()
	j := Job{Name: name, Schedule: sched, Args: args}
	if err := j.Validate(); err != nil {
		t.Fatal(err)
	}
	return j
}

// fakeClock advances only when slept on, recording every sleep, so retry waits of hours take no
// time and can be asserted exactly.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return nil
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var _ Clock = (*fakeClock)(nil)
var _ Clock = SystemClock{}
