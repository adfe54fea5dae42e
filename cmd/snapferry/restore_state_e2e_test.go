package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/appliance/esxi/sim"
	"github.com/snapferry/snapferry/cron/exitcode"
)

// TestRestoreStateRebuildsASimulatedHost is the disaster-recovery drill: a simulated ESXi host
// with two scheduled jobs and installed crontab lines backs up a VM (which also stores its
// snapferry state); then its state folder, crontab and known_hosts are lost; restore-state from
// the repository alone brings back the jobs file, the schedule as `cron list` shows it and the
// crontab byte for byte, the history and the known host.
func TestRestoreStateRebuildsASimulatedHost(t *testing.T) {
	_, env, _ := simHost(t, sim.VMSpec{Name: "web 1", Datastore: "datastore1", PoweredOn: true, Tools: true,
		Disks: []sim.DiskSpec{{Size: 8 << 20, Data: []sim.Extent{{Offset: 0, Length: 1 << 20, Seed: 7}}}}})
	dir := t.TempDir()
	home, repoDir, crontab := filepath.Join(dir, "state"), filepath.Join(dir, "repo"), filepath.Join(dir, "crontab")
	t.Setenv("HOME", filepath.Join(dir, "root")) // known_hosts is ~/.ssh/known_hosts
	knownHosts := filepath.Join(dir, "root", ".ssh", "known_hosts")
	if err := os.MkdirAll(filepath.Dir(knownHosts), 0o700); err != nil {
		t.Fatal(err)
	}
	const hostKey = "nas.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIRestoreStateTestKey"
	if err := os.WriteFile(knownHosts, []byte(hostKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sfEnv(t, home, env, 0, "init", repoDir)
	cronSF(t, home, 0, "cron", "add", "nightly", "30 1 * * *", "--crontab", crontab, "--retries=2", "--retry-delay=10m",
		"--mail-to=ops@example.com", "--mail-from=esxi1@example.com", "--smtp=mail.example:587", "--", "backup", "--vm=all", "--to="+repoDir)
	cronSF(t, home, 0, "cron", "add", "weekly", "@weekly", "--crontab", crontab, "--", "check", "--repo="+repoDir)
	cronSF(t, home, 0, "cron", "install", "--crontab", crontab)
	sfEnv(t, home, env, 0, "backup", "--vm=all", "--to", repoDir)

	jobsBefore := readFile(t, filepath.Join(home, "cron", "jobs.json"))
	crontabBefore := readFile(t, crontab)
	listBefore := mustSF(t, home, 0, "cron", "list", "--json").stdout
	if !strings.Contains(crontabBefore, "#snapferry:nightly") || !strings.Contains(crontabBefore, "#snapferry:weekly") {
		t.Fatalf("crontab before:\n%s", crontabBefore)
	}
	// The state snapshot is not a backup: listings and `latest` show the VM only.
	if snaps := mustSF(t, home, 0, "snapshots", "--repo", repoDir).stdout; strings.Contains(snaps, "host-state") || !strings.Contains(snaps, "\n1 snapshot\n") {
		t.Errorf("snapshots lists the host state:\n%s", snaps)
	}
	hostname, _ := os.Hostname()
	if l := mustSF(t, home, 0, "restore-state", "--list", "--from", repoDir).stdout; !strings.Contains(l, hostname) {
		t.Errorf("restore-state --list does not name %s:\n%s", hostname, l)
	}

	// The host dies: state folder, crontab and known_hosts are gone.
	for _, p := range []string{home, crontab, knownHosts} {
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
	r := sfEnv(t, home, env, 0, "restore-state", "--from", repoDir, "--crontab", crontab)
	if !strings.Contains(r.stdout, "2 job(s) scheduled") {
		t.Errorf("restore-state output:\n%s", r.stdout)
	}
	if got := readFile(t, filepath.Join(home, "cron", "jobs.json")); got != jobsBefore {
		t.Errorf("jobs file:\n%s\nwant\n%s", got, jobsBefore)
	}
	if got := readFile(t, crontab); got != crontabBefore {
		t.Errorf("crontab:\n%s\nwant\n%s", got, crontabBefore)
	}
	if got := mustSF(t, home, 0, "cron", "list", "--json").stdout; got != listBefore {
		t.Errorf("cron list:\n%s\nwant\n%s", got, listBefore)
	}
	if got := readFile(t, knownHosts); !strings.Contains(got, hostKey) {
		t.Errorf("known_hosts %q", got)
	}
	var hist []historyJob
	if err := json.Unmarshal([]byte(mustSF(t, home, 0, "jobs", "--json").stdout), &hist); err != nil || len(hist) == 0 {
		t.Errorf("job history not restored: %v %+v", err, hist)
	}

	// Again: nothing changes. Another host's name: refused, naming the hosts that have state.
	again := sfEnv(t, home, env, 0, "restore-state", "--from", repoDir, "--crontab", crontab)
	if strings.Contains(again.stdout, "restored") || strings.Contains(again.stdout, "updated") {
		t.Errorf("second restore changed something:\n%s", again.stdout)
	}
	none := sfEnv(t, home, env, exitcode.Failed, "restore-state", "--from", repoDir, "--host-name", "esxi-gone", "--crontab", crontab)
	if !strings.Contains(none.stderr, hostname) || !strings.Contains(none.stderr, "--host-name") {
		t.Errorf("unknown host:\n%s", none.stderr)
	}
}

// A state that cannot be read (a hand-broken jobs file) costs the run a warning, never its
// backup: the snapshot is committed, exit 0, and restore-state finds no state to use.
func TestBackupWarnsWhenTheStateCannotBeSaved(t *testing.T) {
	dir := t.TempDir()
	home, repoDir, src := filepath.Join(dir, "state"), filepath.Join(dir, "repo"), filepath.Join(dir, "src")
	t.Setenv("HOME", filepath.Join(dir, "root"))
	if err := os.MkdirAll(filepath.Join(home, "cron"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "cron", "jobs.json"), []byte(`{"jobs": [`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "a.txt"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustSF(t, home, 0, "init", repoDir)
	r := mustSF(t, home, 0, "backup", src, "--to", repoDir)
	if !strings.Contains(r.stderr, "warning: this host's snapferry state was not saved") || !strings.Contains(r.stderr, "jobs.json") {
		t.Errorf("no warning naming the jobs file:\n%s", r.stderr)
	}
	if snaps := mustSF(t, home, 0, "snapshots", "--repo", repoDir).stdout; !strings.Contains(snaps, "1 snapshot\n") {
		t.Errorf("the backup was not committed:\n%s", snaps)
	}
	if r := mustSF(t, home, exitcode.Failed, "restore-state", "--from", repoDir, "--no-crontab"); !strings.Contains(r.stderr, "no host-state snapshot") {
		t.Errorf("restore-state without a stored state:\n%s", r.stderr)
	}
}
