package cron

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/cron/testkit"
)

var testLine = LineOptions{Binary: "/vmfs/volumes/datastore 1/snapferry/snapferry", Home: "/vmfs/volumes/datastore 1/snapferry/var"}

func entriesFor(t *testing.T, o LineOptions, jobs ...Job) []CrontabEntry {
	t.Helper()
	e, err := CrontabLines(jobs, o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// withoutOwned drops snapferry's lines, leaving what must be the foreign text byte for byte.
func withoutOwned(text string) string {
	var b strings.Builder
	for _, l := range splitLines(text) {
		if _, owned := OwnedCrontabLine(l.text); !owned {
			b.WriteString(l.text + l.end)
		}
	}
	return b.String()
}

func TestCrontabLineFormat(t *testing.T) {
	j := mustJob(t, "nightly", "@daily", "backup", "--vm=all", "--to=ssh://store/repo")
	e := entriesFor(t, testLine, j)[0]
	want := `0 0 * * * '/vmfs/volumes/datastore 1/snapferry/snapferry' '--home=/vmfs/volumes/datastore 1/snapferry/var' cron run nightly >/dev/null 2>&1 #snapferry:nightly`
	if e.Line != want {
		t.Fatalf("line\n got %s\nwant %s", e.Line, want)
	}
	if name, ok := OwnedCrontabLine(e.Line); !ok || name != "nightly" {
		t.Fatalf("own line not recognised: %q %v", name, ok)
	}
	o := testLine
	o.Suspended = true
	s := entriesFor(t, o, j)[0]
	if s.Line != suspendedPrefix+want {
		t.Fatalf("suspended line %q", s.Line)
	}
	if name, ok := OwnedCrontabLine(s.Line); !ok || name != "nightly" {
		t.Fatal("suspended line must still be owned")
	}
	if _, err := CrontabLine(j, LineOptions{Binary: "snapferry"}); err == nil || !strings.Contains(err.Error(), "not absolute") {
		t.Fatalf("relative binary: %v", err)
	}
	if _, err := CrontabLine(j, LineOptions{Binary: "/x/snapferry", Home: "var"}); err == nil || !strings.Contains(err.Error(), "home folder") {
		t.Fatalf("relative home: %v", err)
	}
}

func TestEditCrontabESXiFixture(t *testing.T) {
	orig := readFixture(t, "crontab_esxi.txt")
	a := mustJob(t, "nightly", "30 2 * * *", "backup", "--vm=all", "--to=/vmfs/volumes/backup/repo")
	b := mustJob(t, "weekly-files", "@weekly", "backup", "/etc", "--to=/vmfs/volumes/backup/repo")
	entries := entriesFor(t, testLine, a, b)

	got := EditCrontab(orig, entries)
	want := orig + entries[0].Line + "\n" + entries[1].Line + "\n"
	if got != want {
		t.Fatalf("install:\n%s\nwant:\n%s", got, want)
	}
	if again := EditCrontab(got, entries); again != got {
		t.Fatalf("second install changed the table:\n%s", again)
	}
	if withoutOwned(got) != orig {
		t.Fatal("foreign lines changed")
	}

	// Change one job's schedule: replaced where it stands, nothing else moves.
	a.Schedule = "45 23 * * 1-5"
	entries2 := entriesFor(t, testLine, a, b)
	got2 := EditCrontab(got, entries2)
	if want2 := orig + entries2[0].Line + "\n" + entries[1].Line + "\n"; got2 != want2 {
		t.Fatalf("replace:\n%s\nwant:\n%s", got2, want2)
	}

	// Remove a job: its line goes, the rest stays.
	got3 := EditCrontab(got2, entriesFor(t, testLine, b))
	if want3 := orig + entries[1].Line + "\n"; got3 != want3 {
		t.Fatalf("remove:\n%s\nwant:\n%s", got3, want3)
	}
	if EditCrontab(got3, nil) != orig {
		t.Fatal("removing all jobs must give the original table back")
	}
}

func TestEditCrontabKeepsPositionAndDropsDuplicates(t *testing.T) {
	j := mustJob(t, "nightly", "0 1 * * *", "backup", "--vm=all", "--to=/r")
	e := entriesFor(t, testLine, j)
	text := "MAILTO=\"\"\n" +
		"5 5 * * * /old/snapferry cron run nightly #snapferry:nightly\n" +
		"0 6 * * * /bin/true\n" +
		"7 7 * * * /old/snapferry cron run nightly #snapferry:nightly\r\n" +
		"9 9 * * * /old/snapferry cron run gone #snapferry:gone\n"
	got := EditCrontab(text, e)
	want := "MAILTO=\"\"\n" + e[0].Line + "\n" + "0 6 * * * /bin/true\n"
	if got != want {
		t.Fatalf("got:\n%q\nwant:\n%q", got, want)
	}
}

func TestEditCrontabNoFinalNewline(t *testing.T) {
	orig := readFixture(t, "crontab_nonl.txt")
	e := entriesFor(t, testLine, mustJob(t, "n", "@hourly", "check", "--repo=/r"))
	got := EditCrontab(orig, e)
	if got != orig+"\n"+e[0].Line+"\n" {
		t.Fatalf("got %q", got)
	}
	if EditCrontab("", e) != e[0].Line+"\n" {
		t.Fatal("empty table")
	}
	if EditCrontab(orig, nil) != orig {
		t.Fatal("no entries must leave a foreign table untouched, even its missing final newline")
	}
}

func TestEditCrontabEscapesPercent(t *testing.T) {
	o := LineOptions{Binary: "/opt/snap%ferry/snapferry", Home: "/var/lib/snap ferry/%h"}
	e := entriesFor(t, o, mustJob(t, "pct", "0 3 * * *", "backup", "--tag=%Y"))[0]
	cmd := strings.TrimSuffix(strings.SplitN(e.Line, " ", 6)[5], " >/dev/null 2>&1 #snapferry:pct")
	if want := `/opt/snap\%ferry/snapferry '--home=/var/lib/snap ferry/'\%h cron run pct`; cmd != want {
		t.Fatalf("command %s, want %s", cmd, want)
	}
	// No '%' may stand unescaped anywhere in the line: crond would cut the command there.
	for i := 0; i < len(e.Line); i++ {
		if e.Line[i] == '%' && (i == 0 || e.Line[i-1] != '\\') {
			t.Fatalf("unescaped %% at %d in %s", i, e.Line)
		}
	}
}

// TestCrontabLineRunsUnderBusybox runs the command part of a real line (everything after the
// five fields, redirection and marker included) the way crond would, with both treatments of
// '%', and checks what the binary receives.
func TestCrontabLineRunsUnderBusybox(t *testing.T) {
	busybox := testkit.RequireTool(t, "busybox")
	dir := t.TempDir()
	binDir := filepath.Join(dir, "data store 50%")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	record := filepath.Join(dir, "args")
	bin := filepath.Join(binDir, "snap'ferry")
	script := "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > '" + record + "'\necho noise; echo noise >&2\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "state %h $(id) `x`")
	e := entriesFor(t, LineOptions{Binary: bin, Home: home}, mustJob(t, "night.ly", "@daily", "backup"))[0]
	command := strings.SplitN(e.Line, " ", 6)[5]
	for mode, crond := range crondModes {
		os.Remove(record)
		out, err := exec.Command(busybox, "sh", "-c", crond(command)).CombinedOutput()
		if err != nil || len(out) != 0 {
			t.Fatalf("%s: %v, output %q (must go to /dev/null)", mode, err, out)
		}
		got, _ := os.ReadFile(record)
		if want := "--home=" + home + "\ncron\nrun\nnight.ly\n"; string(got) != want {
			t.Errorf("%s: binary got\n%s\nwant\n%s", mode, got, want)
		}
	}
}
