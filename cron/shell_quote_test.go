package cron

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/cron/testkit"
)

// trickyArgs are arguments a crontab line must carry unchanged through crond and busybox ash.
var trickyArgs = []string{
	"plain", "with space", "it's", `"dq"`, "$HOME", "`id`", "$(id)", "a%b", "%", "%%", "50% off's",
	"tab\there", `back\slash`, `a\%b`, `trailing\`, "*", "~root", "ünïcode", "", "-x", "a;b|c&d>e",
	"#not-a-comment", "/vmfs/volumes/datastore 1/snapferry", "--home=/x y/%Y",
}

// crondModes simulate the two ways crond may treat the command before handing it to sh -c.
var crondModes = map[string]func(string) string{
	"vixie-unescapes":  func(s string) string { return strings.ReplaceAll(s, `\%`, "%") },
	"busybox-verbatim": func(s string) string { return s },
}

func TestQuoteCrontabRoundTripBusybox(t *testing.T) {
	busybox := testkit.RequireTool(t, "busybox")
	// printf's format has a '%' as well, so it is quoted the same way as the data.
	args := append([]string{"printf", `[%s]\n`}, trickyArgs...)
	cmd := QuoteCrontabCommand(args)
	if strings.Contains(strings.ReplaceAll(cmd, `\%`, ""), "%") {
		t.Fatalf("unescaped %% in %s", cmd)
	}
	var want strings.Builder
	for _, a := range trickyArgs {
		want.WriteString("[" + a + "]\n")
	}
	for mode, crond := range crondModes {
		out, err := exec.Command(busybox, "sh", "-c", crond(cmd)).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: busybox sh -c %s: %v\n%s", mode, cmd, err, out)
		}
		if string(out) != want.String() {
			t.Errorf("%s: round trip of\n%s\ngave\n%s\nwant\n%s", mode, cmd, out, want.String())
		}
	}
}

func TestQuoteShellArgRoundTripBusybox(t *testing.T) {
	busybox := testkit.RequireTool(t, "busybox")
	var q []string
	for _, a := range trickyArgs {
		q = append(q, QuoteShellArg(a))
	}
	out, err := exec.Command(busybox, "sh", "-c", `for a in `+strings.Join(q, " ")+`; do printf '%s\0' "$a"; done`).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if !slices.Equal(got, trickyArgs) {
		t.Fatalf("got %q\nwant %q", got, trickyArgs)
	}
}

func TestQuoteKeepsSafeArgsBare(t *testing.T) {
	for in, want := range map[string]string{
		"backup": "backup", "--to=/vmfs/volumes/ds1/repo": "--to=/vmfs/volumes/ds1/repo",
		"a b": "'a b'", "": "''", "x%y": `x\%y`, "it's": `'it'\''s'`,
	} {
		if got := QuoteCrontabArg(in); got != want {
			t.Errorf("QuoteCrontabArg(%q) = %s, want %s", in, got, want)
		}
	}
}
