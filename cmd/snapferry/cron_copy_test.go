package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCronCopyJob schedules the off-site leg of 3-2-1 as one cron job: a copy from the local
// repository into a second one, run by `cron run` like any job. `cron add` refused copy and
// retain before ("cannot be scheduled"), though their help says to run them from cron.
func TestCronCopyJob(t *testing.T) {
	dir := t.TempDir()
	home, src := filepath.Join(dir, "state"), filepath.Join(dir, "src")
	local, offsite := filepath.Join(dir, "local"), filepath.Join(dir, "offsite")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "a.txt"), []byte(strings.Repeat("three two one\n", 500)), 0o644)
	mustSF(t, home, 0, "init", local)
	mustSF(t, home, 0, "init", offsite)
	mustSF(t, home, 0, "backup", src, "--to="+local)
	cronSF(t, home, 0, "cron", "add", "offsite", "30 3 * * *", "--", "copy", "--from="+local, "--to="+offsite, "--latest=7")
	cronSF(t, home, 0, "cron", "add", "lock", "@daily", "--", "retain", "--repo="+offsite)
	cronSF(t, home, 2, "cron", "add", "nowhere", "@daily", "--", "copy", "--from="+local)

	cronSF(t, home, 0, "cron", "run", "offsite")
	if snaps := mustSF(t, home, 0, "snapshots", "--repo", offsite); !strings.Contains(snaps.stdout, "\n1 snapshot\n") {
		t.Fatalf("the copy job copied nothing:\n%s", snaps.stdout)
	}
	out := filepath.Join(dir, "out")
	mustSF(t, home, 0, "restore", "latest", "--from", offsite, "--target", out)
	want := strings.Repeat("three two one\n", 500)
	if got, err := os.ReadFile(filepath.Join(out, src, "a.txt")); string(got) != want {
		t.Fatalf("restore from the off-site copy: %d bytes, %v", len(got), err)
	}
	// retain on a store without Object Lock says so and does nothing: the job succeeds.
	cronSF(t, home, 0, "cron", "run", "lock")
}
