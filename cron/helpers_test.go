package cron

import (
	"os"
	"testing"

	"github.com/snapferry/snapferry/cron/clock"
	"github.com/snapferry/snapferry/cron/crontest"
)

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

var _ clock.Clock = (*crontest.FakeClock)(nil)
var _ clock.Clock = clock.System{}
