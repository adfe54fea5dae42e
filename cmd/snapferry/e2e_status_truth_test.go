package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `status` tells the truth: a fresh host (nothing backed up) needs a human; a cron run whose
// report mail cannot be sent says so in its exit status, its history and `status`.
func TestStatusAndUnsentMail(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "state")
	st := mustSF(t, home, exitFailed, "status")
	if !strings.Contains(st.stdout, "nothing has been backed up") || strings.Contains(st.stdout, "all healthy") {
		t.Fatalf("status of a fresh host:\n%s", st.stdout)
	}
	repo, src := filepath.Join(dir, "repo"), filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "f"), []byte("data"), 0o644)
	mustSF(t, home, 0, "init", repo)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	cronSF(t, home, 0, "cron", "add", "nightly", "30 2 * * *", "--mail-to=ops@example.com", "--mail-from=esx@example.com",
		"--smtp="+closed, "--smtp-tls=none", "--mail-on=always", "--", "backup", src, "--to="+repo)
	r := mustSF(t, home, exitFailed, "cron", "run", "nightly")
	if !strings.Contains(r.stderr, closed) {
		t.Fatalf("cron run does not say the mail failed:\n%s", r.stderr)
	}
	var jobs []struct {
		Name      string `json:"name"`
		Exit      *int   `json:"exit"`
		MailError string `json:"mail_error"`
	}
	out := mustSF(t, home, 0, "jobs", "--json").stdout
	if err := json.Unmarshal([]byte(out), &jobs); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, j := range jobs {
		if j.Name == "nightly" && j.Exit != nil && *j.Exit == 0 && strings.Contains(j.MailError, "report mail not sent") {
			found = true
		}
	}
	if !found {
		t.Fatalf("history does not show the unsent mail beside the ok backup:\n%s", out)
	}
	st = mustSF(t, home, exitFailed, "status", "--crontab="+filepath.Join(home, "fixture-crontab"))
	if !strings.Contains(st.stdout, "report mail") || strings.Contains(st.stdout, "nothing has been backed up") {
		t.Fatalf("status after the unsent mail:\n%s", st.stdout)
	}
}
