package jobrun

import (
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/appliance/cronrun"
	"github.com/snapferry/snapferry/pidmgr"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// The origin decides whether kill-idle may stop a job later: it must come out right for every
// way a job starts.
func TestDetectOrigin(t *testing.T) {
	cases := []struct {
		name  string
		flag  string
		env   map[string]string
		want  pidmgr.Type
		job   string
		tries int
	}{
		{"shell", "", nil, pidmgr.TypeUser, "", 1},
		{"cron run", "", map[string]string{cronrun.EnvCronJob: "nightly", cronrun.EnvAttempt: "3"}, pidmgr.TypeCron, "nightly", 3},
		{"cron, bad attempt", "", map[string]string{cronrun.EnvCronJob: "nightly", cronrun.EnvAttempt: "x"}, pidmgr.TypeCron, "nightly", 1},
		{"far side of --host", "", map[string]string{EnvOrigin: "remote"}, pidmgr.TypeRemote, "", 1},
		{"flag wins", "remote", map[string]string{cronrun.EnvCronJob: "nightly"}, pidmgr.TypeRemote, "nightly", 1},
	}
	for _, c := range cases {
		o, err := DetectOrigin(c.flag, env(c.env))
		if err != nil || o.Type != c.want || o.CronJob != c.job || o.Attempt != c.tries {
			t.Errorf("%s: got %+v, %v; want %s job %q attempt %d", c.name, o, err, c.want, c.job, c.tries)
		}
	}
	if _, err := DetectOrigin("admin", env(nil)); err == nil {
		t.Error("an unknown --origin was accepted")
	}
}

// Job ids sort by start time and are safe in VM snapshot names and registry lines.
func TestNewID(t *testing.T) {
	a, b := NewID(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), NewID(time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC))
	if !(a < b) || !strings.HasPrefix(a, "20260102-030405-") || strings.ContainsAny(a, " \t/") {
		t.Fatalf("ids %q, %q", a, b)
	}
	if NewID(time.Unix(0, 0)) == NewID(time.Unix(0, 0)) {
		t.Fatal("two ids of the same second are equal")
	}
}
