package cron

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron/testkit"
)

func TestStoreAddListRemoveSuspend(t *testing.T) {
	ctx := context.Background()
	s := NewStore(t.TempDir())
	f, err := s.Load(ctx)
	if err != nil || len(f.Jobs) != 0 || f.Suspended {
		t.Fatalf("empty store: %+v %v", f, err)
	}
	j := mustJob(t, "nightly", "30 2 * * *", "backup", "--vm=all", "--to=/vmfs/volumes/backup/repo")
	j.Retry = Retry{Retries: 3, Delay: Duration(5 * time.Minute), Window: Duration(12 * time.Hour)}
	j.Mail = Mail{To: []string{"ops@example.com"}, Server: "mail.example.com:587", TLS: "starttls", On: "failure"}
	j.Hooks = []string{"job.failure:logger -t snapferry failed"}
	if err := s.Add(ctx, j, false); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(ctx, j, false); !errors.Is(err, ErrJobExists) {
		t.Fatalf("second add: %v", err)
	}
	j2 := mustJob(t, "files", "@weekly", "backup", "/etc", "--to=/r")
	if err := s.Add(ctx, j2, false); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(s.Path())
	for _, want := range []string{`"name": "nightly"`, `"delay": "5m0s"`, `"window": "12h0m0s"`, `"smtp": "mail.example.com:587"`, `"suspended": false`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("jobs file lacks %s:\n%s", want, raw)
		}
	}
	if strings.Contains(string(raw), `"mail"`) && strings.Count(string(raw), `"mail"`) != 1 {
		t.Errorf("an empty mail section must be left out:\n%s", raw)
	}
	f, _ = s.Load(ctx)
	if got, ok := f.Job("nightly"); !ok || got.Retry != j.Retry || got.Mail.Server != j.Mail.Server || len(f.Jobs) != 2 {
		t.Fatalf("reloaded %+v", f)
	}
	if err := s.SetSuspended(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RunnableJob(ctx, "nightly"); !errors.Is(err, ErrSuspended) {
		t.Fatalf("run while suspended: %v", err)
	}
	if err := s.SetSuspended(ctx, false); err != nil {
		t.Fatal(err)
	}
	if got, err := s.RunnableJob(ctx, "nightly"); err != nil || got.Name != "nightly" {
		t.Fatalf("run after resume: %v", err)
	}
	if err := s.Remove(ctx, "nightly"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "nightly"); !errors.Is(err, ErrJobNotFound) {
		t.Fatalf("remove twice: %v", err)
	}
	if _, err := s.RunnableJob(ctx, "nightly"); !errors.Is(err, ErrJobNotFound) {
		t.Fatalf("run removed: %v", err)
	}
	if fi, _ := os.Stat(s.Path()); fi.Mode().Perm() != 0o600 {
		t.Fatalf("jobs file mode %v: it names password files, keep it private", fi.Mode())
	}
}

func TestStoreRejectsBadHandEdits(t *testing.T) {
	ctx := context.Background()
	for name, text := range map[string]string{
		"unknown key":   `{"jobs":[{"name":"a","schedule":"@daily","args":["check"],"retires":3}]}`,
		"bad schedule":  `{"jobs":[{"name":"a","schedule":"99 * * * *","args":["check"]}]}`,
		"bad duration":  `{"jobs":[{"name":"a","schedule":"@daily","args":["check"],"retry":{"delay":"5 minutes"}}]}`,
		"duplicate":     `{"jobs":[{"name":"a","schedule":"@daily","args":["check"]},{"name":"a","schedule":"@daily","args":["check"]}]}`,
		"bad name":      `{"jobs":[{"name":"a b","schedule":"@daily","args":["check"]}]}`,
		"no command":    `{"jobs":[{"name":"a","schedule":"@daily","args":[]}]}`,
		"broken syntax": `{"jobs":[`,
	} {
		s := NewStore(t.TempDir())
		os.MkdirAll(s.Dir(), 0o755)
		os.WriteFile(s.Path(), []byte(text), 0o600)
		_, err := s.Load(ctx)
		if err == nil || !strings.Contains(err.Error(), s.Path()) {
			t.Errorf("%s: want an error naming the file, got %v", name, err)
		}
		if err := s.Add(ctx, mustJob(t, "b", "@daily", "check"), false); err == nil {
			t.Errorf("%s: add must not overwrite a broken file", name)
		}
	}
}

// Concurrent adds from separate stores (separate lock file descriptors, as separate processes
// would have) must all land.
func TestStoreConcurrentAdds(t *testing.T) {
	home := t.TempDir()
	testkit.Concurrently(t, 16, func(i int) error {
		j := Job{Name: fmt.Sprintf("job%02d", i), Schedule: "@daily", Args: []string{"check"}}
		return NewStore(home).Add(context.Background(), j, false)
	})
	f, err := NewStore(home).Load(context.Background())
	if err != nil || len(f.Jobs) != 16 {
		t.Fatalf("%d jobs after 16 concurrent adds (err %v)", len(f.Jobs), err)
	}
}

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"nightly", "web-01.daily", "A_b"} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-x", ".hidden", "a b", "a/b", "a;b", strings.Repeat("x", 65), "é"} {
		if err := ValidateName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if err := (Job{Name: "x", Schedule: "@daily", Args: []string{"cron", "run", "x"}}).Validate(); err == nil {
		t.Error("a job running cron itself must be refused")
	}
}
