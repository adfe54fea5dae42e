package hoststate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron"
	"github.com/snapferry/snapferry/cron/history"
	"github.com/snapferry/snapferry/images/disk/memblobs"
	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/store/local"
)

// oldHost lays out a host's state the way snapferry leaves it: jobs (one with an SMTP password
// file, one with a repository password file), installed and persisted crontab lines, history
// and known_hosts.
type oldHost struct {
	dir, home, knownHosts, localSh, crontab, fwDir, smtpPass, repoPass string
	lines                                                              cron.LineOptions
}

func newOldHost(t *testing.T) *oldHost {
	t.Helper()
	dir := t.TempDir()
	h := &oldHost{dir: dir, home: filepath.Join(dir, "old", "state"), knownHosts: filepath.Join(dir, "old", ".ssh", "known_hosts"),
		localSh: filepath.Join(dir, "old", "local.sh"), crontab: filepath.Join(dir, "old", "crontab"), fwDir: filepath.Join(dir, "old", "firewall"),
		smtpPass: filepath.Join(dir, "secrets", "smtp.pass"), repoPass: filepath.Join(dir, "secrets", "repo.pass")}
	h.lines = cron.LineOptions{Binary: "/opt/snapferry/snapferry", Home: h.home}
	ctx := context.Background()
	st := cron.NewStore(h.home)
	jobs := []cron.Job{
		{Name: "nightly", Schedule: "30 1 * * *", Args: []string{"backup", "--vm=all", "--to=ssh://backup@nas/srv/repo"},
			Retry: cron.Retry{Retries: 2}, Mail: cron.Mail{To: []string{"ops@example.com"}, Server: "mail:587", User: "ops", PasswordFile: h.smtpPass}},
		{Name: "weekly-check", Schedule: "@weekly", Args: []string{"check", "--repo=/mnt/repo", "--password-file", h.repoPass}},
	}
	for _, j := range jobs {
		if err := st.Add(ctx, j, false); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite(t, filepath.Join(h.home, history.FileName), `{"job":"1","state":"started"}`+"\n")
	mustWrite(t, h.knownHosts, "nas ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOldHostKey\n")
	mustWrite(t, h.smtpPass, "smtp-secret\n")
	mustWrite(t, h.repoPass, "repo-secret\n")
	mustWrite(t, h.localSh, "#!/bin/sh\nexit 0\n")
	target := cron.FileCrontab{Path: h.crontab}
	if _, err := cron.InstallFromStore(ctx, st, h.lines, target, nil); err != nil {
		t.Fatal(err)
	}
	o := cron.PersistOptions{Binary: h.lines.Binary, Home: h.home, Crontab: h.crontab, FirewallDir: h.fwDir}
	if _, err := cron.Persist(h.localSh, cron.PersistStanza(o)); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *oldHost) sources(encrypted bool) Sources {
	return Sources{Host: "esxi1", Home: h.home, Binary: h.lines.Binary, KnownHosts: h.knownHosts, LocalSh: h.localSh, Encrypted: encrypted}
}

func mustWrite(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func saveState(t *testing.T, r *repo.Repository, src Sources) repo.ID {
	t.Helper()
	st, err := Collect(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	id, err := Save(context.Background(), r, st, time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// The whole round trip: the old host's state saved, the host gone, a fresh host (same binary and
// state-folder paths, as a reinstall gives) restored from the repository alone.
func TestSaveLoadApplyRebuildsTheHost(t *testing.T) {
	ctx := context.Background()
	old := newOldHost(t)
	dir, r := memblobs.LocalRepo(t, 0, repo.ChunkerParams{})
	saveState(t, r, old.sources(false))
	wantJobs := mustRead(t, cron.NewStore(old.home).Path())
	wantCrontab := mustRead(t, old.crontab)
	wantLocalSh := mustRead(t, old.localSh)
	wantHistory := mustRead(t, filepath.Join(old.home, history.FileName))
	r.Close()

	// The disaster: the state folder, crontab, boot script and keys are gone.
	for _, p := range []string{old.home, old.crontab, old.localSh, old.knownHosts, old.smtpPass, old.repoPass} {
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite(t, old.localSh, "#!/bin/sh\nexit 0\n")      // a fresh host's stock local.sh
	if err := os.MkdirAll(old.fwDir, 0o755); err != nil { // ESXi has /etc/vmware/firewall
		t.Fatal(err)
	}

	r2 := memblobs.OpenRepo(t, dir)
	st, si, err := Load(ctx, r2, "esxi1")
	if err != nil {
		t.Fatal(err)
	}
	if si.Snapshot.Kind != Kind || si.Snapshot.Source != Source || si.Snapshot.Host != "esxi1" {
		t.Errorf("snapshot %+v", si.Snapshot)
	}
	if !st.Manifest.Persisted || len(st.Manifest.Secrets) != 2 {
		t.Errorf("manifest %+v", st.Manifest)
	}
	var refreshed []string
	run := func(_ context.Context, name string, args ...string) ([]byte, error) {
		refreshed = append(refreshed, name+" "+strings.Join(args, " "))
		return nil, nil
	}
	rep, err := Apply(ctx, st, Target{Home: old.home, KnownHosts: old.knownHosts, Crontab: cron.FileCrontab{Path: old.crontab},
		Lines: old.lines, LocalSh: old.localSh, FirewallDir: old.fwDir, Run: run})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, cron.NewStore(old.home).Path()); got != wantJobs {
		t.Errorf("jobs file:\n%s\nwant\n%s", got, wantJobs)
	}
	if got := mustRead(t, old.crontab); got != wantCrontab {
		t.Errorf("crontab:\n%s\nwant\n%s", got, wantCrontab)
	}
	if got := mustRead(t, old.localSh); got != wantLocalSh {
		t.Errorf("local.sh:\n%s\nwant\n%s", got, wantLocalSh)
	}
	if got := mustRead(t, filepath.Join(old.home, history.FileName)); got != wantHistory {
		t.Errorf("history %q", got)
	}
	if got := mustRead(t, old.knownHosts); !strings.Contains(got, "OldHostKey") {
		t.Errorf("known_hosts %q", got)
	}
	if len(refreshed) != 1 || refreshed[0] != "esxcli network firewall refresh" {
		t.Errorf("firewall calls %q", refreshed)
	}
	// Not encrypted: the passwords were not stored, and the report says which files to make.
	for _, p := range []string{old.smtpPass, old.repoPass} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s restored from an unencrypted repository", p)
		}
		if !strings.Contains(strings.Join(rep.Notes, "\n"), "create "+p) {
			t.Errorf("notes do not ask for %s: %q", p, rep.Notes)
		}
	}
	if rep.Jobs != 2 || !rep.CrontabChanged {
		t.Errorf("report %+v", rep)
	}

	// Running it again changes nothing and is no conflict.
	rep, err = Apply(ctx, st, Target{Home: old.home, KnownHosts: old.knownHosts, Crontab: cron.FileCrontab{Path: old.crontab},
		Lines: old.lines, LocalSh: old.localSh, FirewallDir: old.fwDir, Run: run})
	if err != nil || rep.CrontabChanged {
		t.Fatalf("second apply: %+v, %v", rep, err)
	}
	for _, a := range rep.Actions {
		if a.What != "SMTP firewall rule" && a.Result != "unchanged" {
			t.Errorf("second apply changed %s: %s", a.What, a.Result)
		}
	}
}

func TestEncryptedRepositoryKeepsSecrets(t *testing.T) {
	ctx := context.Background()
	old := newOldHost(t)
	dir := t.TempDir() + "/repo"
	pw := []byte("pw")
	if _, err := repo.Init(ctx, local.New(dir), repo.InitOptions{Password: pw, KDF: repo.KDFParams{N: 1 << 10, R: 8, P: 1}}); err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(ctx, local.New(dir), repo.Options{TempDir: t.TempDir(), Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	saveState(t, r, old.sources(true))
	os.RemoveAll(filepath.Join(old.dir, "secrets"))
	os.RemoveAll(old.home)
	st, _, err := Load(ctx, r, "esxi1")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Apply(ctx, st, Target{Home: old.home})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, old.smtpPass); got != "smtp-secret\n" {
		t.Errorf("smtp password %q", got)
	}
	if got := mustRead(t, old.repoPass); got != "repo-secret\n" {
		t.Errorf("repository password %q", got)
	}
	if fi, _ := os.Stat(old.smtpPass); fi.Mode().Perm() != 0o600 {
		t.Errorf("password file mode %v", fi.Mode())
	}
	if !strings.Contains(strings.Join(rep.Notes, "\n"), "cron install --persist") {
		t.Errorf("no note about the boot stanza without a local.sh target: %q", rep.Notes)
	}
}

func TestApplyRefusesToReplaceOtherJobs(t *testing.T) {
	ctx := context.Background()
	old := newOldHost(t)
	_, r := memblobs.LocalRepo(t, 0, repo.ChunkerParams{})
	saveState(t, r, old.sources(false))
	st, _, err := Load(ctx, r, "esxi1")
	if err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(t.TempDir(), "state")
	other := cron.Job{Name: "mine", Schedule: "@daily", Args: []string{"status"}}
	if err := cron.NewStore(fresh).Add(ctx, other, false); err != nil {
		t.Fatal(err)
	}
	before := mustRead(t, cron.NewStore(fresh).Path())
	if _, err := Apply(ctx, st, Target{Home: fresh}); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "--overwrite") {
		t.Fatalf("got %v, want ErrExists naming --overwrite", err)
	}
	if mustRead(t, cron.NewStore(fresh).Path()) != before {
		t.Fatal("jobs file changed although the restore was refused")
	}
	mustWrite(t, filepath.Join(fresh, history.FileName), "{}\n")
	rep, err := Apply(ctx, st, Target{Home: fresh, Overwrite: false, KnownHosts: ""})
	if err == nil {
		t.Fatalf("second try without --overwrite succeeded: %+v", rep)
	}
	if _, err := Apply(ctx, st, Target{Home: fresh, Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, cron.NewStore(fresh).Path()); got != mustRead(t, cron.NewStore(old.home).Path()) {
		t.Errorf("overwrite did not restore the jobs: %s", got)
	}
	if got := mustRead(t, filepath.Join(fresh, history.FileName)); got == "{}\n" {
		t.Error("overwrite kept the history")
	}
}

func TestLoadNamesTheHostsThatHaveState(t *testing.T) {
	old := newOldHost(t)
	_, r := memblobs.LocalRepo(t, 0, repo.ChunkerParams{})
	saveState(t, r, old.sources(false))
	_, _, err := Load(context.Background(), r, "esxi9")
	if !errors.Is(err, ErrNoState) || !strings.Contains(err.Error(), "esxi1") || !strings.Contains(err.Error(), "--host-name") {
		t.Fatalf("got %v", err)
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"format":1,"host":"h","home":"/x","files":["jobs.json","secret-1"],"secrets":[{"path":"/p","jobs":["j"],"file":"secret-1"}]}`))
	f.Add([]byte(`{"format":2}`))
	f.Add([]byte(`{"format":1,"files":["../x"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		for _, name := range m.Files {
			if strings.ContainsAny(name, "/\x00") || name == ManifestFile {
				t.Fatalf("accepted file name %q", name)
			}
		}
	})
}

func TestTrimKeepsTheNewest(t *testing.T) {
	ctx := context.Background()
	old := newOldHost(t)
	_, r := memblobs.LocalRepo(t, 0, repo.ChunkerParams{})
	var last repo.ID
	for i := range 3 {
		st, err := Collect(ctx, old.sources(false))
		if err != nil {
			t.Fatal(err)
		}
		if last, err = Save(ctx, r, st, time.Date(2026, 12, 6, 22, i, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := Trim(ctx, r, "esxi1", 1); err != nil || n != 2 {
		t.Fatalf("trim removed %d, %v; want 2", n, err)
	}
	if _, si, err := Load(ctx, r, "esxi1"); err != nil || si.ID != last {
		t.Fatalf("after trim: %v, %v; want the newest %s", si.ID.Short(), err, last.Short())
	}
}
