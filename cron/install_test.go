package cron

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron/testkit"
)

func TestInstallFileCrontabIdempotentWithRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "spool", "root")
	orig := readFixture(t, "crontab_esxi.txt")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	restarts := 0
	restart := func(context.Context) error { restarts++; return nil }
	entries := entriesFor(t, testLine, mustJob(t, "nightly", "0 2 * * *", "backup", "--to=/r"))
	target := FileCrontab{Path: path}
	for i := range 3 {
		changed, err := Install(ctx, target, entries, restart)
		if err != nil || changed != (i == 0) {
			t.Fatalf("install %d: changed %v, err %v", i, changed, err)
		}
	}
	if restarts != 1 {
		t.Fatalf("crond restarted %d times; only a changed table needs it", restarts)
	}
	got, _ := os.ReadFile(path)
	if string(got) != orig+entries[0].Line+"\n" {
		t.Fatalf("table:\n%s", got)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	failing := func(context.Context) error { return errors.New("crond gone") }
	if _, err := Install(ctx, target, nil, failing); err == nil || !strings.Contains(err.Error(), "lines written") {
		t.Fatalf("restart failure must be reported: %v", err)
	}
}

// TestInstallUserCrontab drives UserCrontab through a stand-in for crontab(1): the real one
// would edit this machine's own root crontab. The script keeps crontab's contract: -l prints
// the table or fails with "no crontab for USER", FILE replaces the table.
func TestInstallUserCrontab(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	table := filepath.Join(dir, "table")
	script := filepath.Join(dir, "crontab")
	os.WriteFile(script, []byte(`#!/bin/sh
if [ "$1" = -l ]; then
  [ -f '`+table+`' ] || { echo "no crontab for $(id -un)" >&2; exit 1; }
  exec cat '`+table+`'
fi
cp "$1" '`+table+`'
`), 0o755)
	u := UserCrontab{Run: ExecRunner, Command: []string{script}, TempDir: dir}
	entries := entriesFor(t, LineOptions{Binary: "/usr/local/bin/snapferry"}, mustJob(t, "n", "@daily", "check", "--repo=/r"))
	if changed, err := Install(ctx, u, entries, nil); err != nil || !changed {
		t.Fatalf("first install: %v %v", changed, err)
	}
	if changed, err := Install(ctx, u, entries, nil); err != nil || changed {
		t.Fatalf("second install: %v %v", changed, err)
	}
	got, _ := os.ReadFile(table)
	if string(got) != entries[0].Line+"\n" {
		t.Fatalf("table %q", got)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "snapferry-crontab-*")); len(m) != 0 {
		t.Fatalf("temp files left: %v", m)
	}
	broken := UserCrontab{Run: ExecRunner, Command: []string{"/bin/false"}}
	if _, err := Install(ctx, broken, entries, nil); err == nil {
		t.Fatal("a failing crontab -l must fail the install")
	}
}

func TestCrondRestartKillsOldAndStartsNew(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	old := exec.Command("sleep", "60")
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- old.Wait() }() // reap, or the zombie would look alive to kill -0
	pidFile := filepath.Join(dir, "crond.pid")
	os.WriteFile(pidFile, []byte(strconv.Itoa(old.Process.Pid)+"\n"), 0o644)
	started := filepath.Join(dir, "started")
	r := CrondRestart{PIDFile: pidFile, Start: []string{"sh", "-c", "echo up > " + started}, Run: ExecRunner, ExitWait: 5 * time.Second}
	if err := r.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if ws, ok := old.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGTERM {
			t.Fatalf("old crond ended with %v, want SIGTERM", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("old crond still running")
	}
	if b, _ := os.ReadFile(started); string(b) != "up\n" {
		t.Fatal("new crond not started")
	}
	// A stale pid file (process gone) or none at all: just start.
	os.Remove(started)
	if err := r.Restart(ctx); err != nil {
		t.Fatalf("stale pid: %v", err)
	}
	os.Remove(pidFile)
	if err := r.Restart(ctx); err != nil {
		t.Fatalf("no pid file: %v", err)
	}
	os.WriteFile(pidFile, []byte("garbage"), 0o644)
	if err := r.Restart(ctx); err == nil || !strings.Contains(err.Error(), "not a process id") {
		t.Fatalf("garbage pid file: %v", err)
	}
}

func TestCrondRestartRefusesSecondCrond(t *testing.T) {
	dir := t.TempDir()
	// A process that ignores SIGTERM stands in for a crond that does not stop.
	ready := filepath.Join(dir, "trap-set")
	stubborn := exec.Command("sh", "-c", "trap '' TERM; touch \"$1\"; while :; do sleep 1; done", "sh", ready)
	if err := stubborn.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stubborn.Process.Kill(); stubborn.Wait() })
	testkit.Eventually(t, 10*time.Second, "the stand-in crond to set its trap", func() bool {
		_, err := os.Stat(ready)
		return err == nil
	})
	pidFile := filepath.Join(dir, "crond.pid")
	os.WriteFile(pidFile, []byte(strconv.Itoa(stubborn.Process.Pid)), 0o644)
	started := filepath.Join(dir, "started")
	r := CrondRestart{PIDFile: pidFile, Start: []string{"touch", started}, Run: ExecRunner, ExitWait: 300 * time.Millisecond}
	if err := r.Restart(context.Background()); err == nil || !strings.Contains(err.Error(), "not starting a second crond") {
		t.Fatalf("want refusal, got %v", err)
	}
	if _, err := os.Stat(started); !os.IsNotExist(err) {
		t.Fatal("a second crond was started")
	}
}

func TestInstallFirewallRule(t *testing.T) {
	dir := t.TempDir()
	var ran []string
	run := func(_ context.Context, name string, args ...string) ([]byte, error) {
		ran = append(ran, name+" "+strings.Join(args, " "))
		return nil, nil
	}
	if err := InstallFirewallRule(context.Background(), dir, run); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, FirewallRuleName))
	if string(b) != FirewallRuleXML() || len(ran) != 1 || ran[0] != "esxcli network firewall refresh" {
		t.Fatalf("rule %q ran %v", b, ran)
	}
}

func TestTargetFor(t *testing.T) {
	if tg, restart := TargetFor("", false, ExecRunner); restart != nil || tg.String() != "the user's crontab" {
		t.Fatalf("linux default: %v %v", tg, restart != nil)
	}
	if tg, restart := TargetFor("", true, ExecRunner); restart == nil || tg.String() != ESXiCrontab {
		t.Fatalf("esxi default: %v %v", tg, restart != nil)
	}
	if tg, restart := TargetFor("/tmp/x/crontab", true, ExecRunner); restart != nil || tg.String() != "/tmp/x/crontab" {
		t.Fatalf("override: %v %v", tg, restart != nil)
	}
}

func TestInstallFromStoreFollowsSuspend(t *testing.T) {
	ctx := context.Background()
	s := NewStore(t.TempDir())
	s.Add(ctx, mustJob(t, "a", "@daily", "check", "--repo=/r"), false)
	s.Add(ctx, mustJob(t, "b", "15 3 * * 6", "backup", "--to=/r"), false)
	target := FileCrontab{Path: filepath.Join(t.TempDir(), "root")}
	os.WriteFile(target.Path, []byte("1 1 * * * /sbin/tmpwatch.py\n"), 0o600)
	o := LineOptions{Binary: "/opt/snapferry", Home: "/var/lib/snapferry"}
	read := func() string { b, _ := os.ReadFile(target.Path); return string(b) }

	if ok, err := Installed(ctx, target); err != nil || ok {
		t.Fatalf("installed before install: %v %v", ok, err)
	}
	if changed, err := InstallFromStore(ctx, s, o, target, nil); err != nil || !changed {
		t.Fatalf("install: %v %v", changed, err)
	}
	if ok, err := Installed(ctx, target); err != nil || !ok {
		t.Fatalf("installed after install: %v %v", ok, err)
	}
	active := read()
	s.SetSuspended(ctx, true)
	InstallFromStore(ctx, s, o, target, nil)
	suspended := read()
	if strings.Count(suspended, "\n"+suspendedPrefix) != 2 || !strings.HasPrefix(suspended, "1 1 * * * /sbin/tmpwatch.py\n") {
		t.Fatalf("suspended table:\n%s", suspended)
	}
	s.SetSuspended(ctx, false)
	InstallFromStore(ctx, s, o, target, nil)
	if read() != active {
		t.Fatalf("resume did not restore the table:\n%s\nwant\n%s", read(), active)
	}
	s.Remove(ctx, "a")
	InstallFromStore(ctx, s, o, target, nil)
	if strings.Contains(read(), "#snapferry:a") || !strings.Contains(read(), "#snapferry:b") {
		t.Fatalf("after remove:\n%s", read())
	}
}
