package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/snapferry/snapferry/cron/exitcode"
)

// runIn runs one command line in-process and returns its exit status and output.
func runIn(t *testing.T, args ...string) result {
	t.Helper()
	var o, e bytes.Buffer
	code := run(args, &o, &e)
	return result{code, o.String(), e.String()}
}

// commandPaths lists every command a user can run, as argument lists ("cron", "add").
func commandPaths(t *testing.T) [][]string {
	t.Helper()
	var out [][]string
	root := newRootCmd(&app{})
	walk(root, func(c *cobra.Command) {
		if c == root || !c.IsAvailableCommand() && c.Name() != "completion" {
			return
		}
		out = append(out, strings.Fields(strings.TrimPrefix(c.CommandPath(), "snapferry ")))
	})
	if len(out) < 30 {
		t.Fatalf("only %d commands in the tree", len(out))
	}
	return out
}

// TestHelpOfEveryCommand: `COMMAND --help` and `snapferry help COMMAND` exit 0 and print the
// usage line with the command's own path, its description and only its own options.
func TestHelpOfEveryCommand(t *testing.T) {
	t.Setenv("SNAPFERRY_HOME", t.TempDir())
	for _, path := range commandPaths(t) {
		name := strings.Join(path, " ")
		r := runIn(t, append(path, "--help")...)
		if r.code != exitcode.OK {
			t.Errorf("%s --help: exit %d\n%s", name, r.code, r.stderr)
			continue
		}
		if !strings.HasPrefix(r.stdout, "Usage: snapferry "+name) {
			t.Errorf("%s --help starts with %q", name, firstLine(r.stdout))
		}
		if h := runIn(t, append([]string{"help"}, path...)...); h.code != 0 || h.stdout != r.stdout {
			t.Errorf("help %s: exit %d, differs from --help:\n%s", name, h.code, h.stdout)
		}
	}
	// Only the options that apply: no tape scheduling options on restore or tape list, no
	// parent options on subcommands.
	for cmd, absent := range map[string]string{"restore": "--streams", "tape list": "--streams", "key add": "--dry-run",
		"pid list": "--dry-run", "key list": "--new-password-file", "snapshots": "--pool"} {
		r := runIn(t, append(strings.Fields(cmd), "--help")...)
		if strings.Contains(r.stdout, absent) {
			t.Errorf("%s --help shows %s", cmd, absent)
		}
	}
	for _, cmd := range []string{"backup", "restore", "snapshots", "ls", "check", "vms", "status"} {
		if r := runIn(t, cmd, "--help"); !strings.Contains(r.stdout, "--host") {
			t.Errorf("%s --help does not show --host", cmd)
		}
	}
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

func TestUnknownCommandAndFlagSuggest(t *testing.T) {
	t.Setenv("SNAPFERRY_HOME", t.TempDir())
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bakup"}, "did you mean backup?"},
		{[]string{"cron", "lst"}, "did you mean list?"},
		{[]string{"check", "--rep=x"}, "did you mean --repo?"},
		{[]string{"backup", "--too=/r", "/etc"}, "did you mean --to?"},
	} {
		r := runIn(t, c.args...)
		if r.code != exitcode.Usage || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and %q", c.args, r.code, r.stderr, c.want)
		}
	}
}

// TestGlobalOptionsBeforeCommand: crontab lines run `snapferry --home=DIR cron run NAME`.
func TestGlobalOptionsBeforeCommand(t *testing.T) {
	home := t.TempDir()
	for _, args := range [][]string{
		{"--home", home, "--json", "cron", "list"},
		{"--home=" + home, "cron", "list", "--json"},
		{"cron", "--json", "list", "--home", home},
	} {
		r := runIn(t, args...)
		var out struct{ File string }
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil || !strings.HasPrefix(out.File, home) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
}

// TestToolExitStatusDoesNotLeak: a vim-cmd that exits 12 is a failed tool (exit 1), not
// "wrong password" (12); before the one exit-code path, any error with an ExitCode method set
// snapferry's status.
func TestToolExitStatusDoesNotLeak(t *testing.T) {
	bin := t.TempDir()
	script := "#!/bin/sh\necho 'vim-cmd: internal error' >&2\nexit 12\n"
	if err := os.WriteFile(filepath.Join(bin, "vim-cmd"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binPath, "vms")
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "SNAPFERRY_HOME="+t.TempDir(), "SNAPFERRY_VMFS_ROOT="+t.TempDir())
	r := runCollect(t, cmd)
	if r.code != exitcode.Failed {
		t.Fatalf("vms with a vim-cmd that exits 12: exit %d, want %d\n%s", r.code, exitcode.Failed, r.stderr)
	}
}

func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh"} {
		r := runIn(t, "completion", shell)
		if r.code != 0 || !strings.Contains(r.stdout, "snapferry") || len(r.stdout) < 1000 {
			t.Errorf("completion %s: exit %d, %d bytes\n%s", shell, r.code, len(r.stdout), r.stderr)
		}
	}
}

// TestReferenceIsCurrent: docs/cli.md is what `make docs` generates from the definitions.
func TestReferenceIsCurrent(t *testing.T) {
	var b bytes.Buffer
	writeReference(&b, newRootCmd(&app{}))
	have, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, b.Bytes()) {
		t.Fatal("docs/cli.md is not what the command definitions say: run `make docs`")
	}
}

func TestManPages(t *testing.T) {
	dir := t.TempDir()
	if r := runIn(t, "docs", "--man", dir); r.code != 0 {
		t.Fatalf("docs --man: exit %d\n%s", r.code, r.stderr)
	}
	page, err := os.ReadFile(filepath.Join(dir, "snapferry-cron-add.1"))
	if err != nil || !bytes.Contains(page, []byte("--mail-from")) {
		t.Fatalf("snapferry-cron-add.1: %v\n%s", err, page)
	}
}
