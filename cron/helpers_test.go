package cron

import (
	"os"
	"os/exec"
	"testing"

	"github.com/snapferry/snapferry/cron/crontest"
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

var _ Clock = (*crontest.FakeClock)(nil)
var _ Clock = SystemClock{}
