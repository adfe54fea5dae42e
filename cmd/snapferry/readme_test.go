package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// exampleDocs are the documents whose examples users copy: README.md and the user guide.
var exampleDocs = []string{"../../README.md", "../../docs/guide.md"}

// docCommands returns every snapferry command line of the Markdown file path: the lines of its
// code blocks (indented ones too) that run ./snapferry or snapferry (continuation lines joined),
// and the inline `snapferry ...` examples of its prose. Each is split as sh would (quotes; no
// variables in these documents).
func docCommands(t *testing.T, path string) [][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	inBlock := false
	var cont string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			inBlock = !inBlock
			continue
		}
		if !inBlock {
			for _, m := range regexp.MustCompile("`(snapferry [^`]+)`").FindAllStringSubmatch(l, -1) {
				lines = append(lines, m[1])
			}
			continue
		}
		l = cont + strings.TrimSpace(l)
		cont = ""
		if strings.HasSuffix(l, "\\") {
			cont = strings.TrimSuffix(l, "\\") + " "
			continue
		}
		if c, _, _ := strings.Cut(l, "  #"); strings.HasPrefix(c, "./snapferry ") || strings.HasPrefix(c, "snapferry ") {
			lines = append(lines, strings.TrimSpace(c))
		}
	}
	var out [][]string
	for _, l := range lines {
		words := shellWords(t, l)
		if len(words) < 2 || strings.Contains(l, "COMMAND") || strings.Contains(l, "|") || strings.Contains(l, " [") {
			continue // a synopsis (`snapferry COMMAND --help`, `key add|list|remove`, `repair [--dry-run]`), not an example
		}
		out = append(out, words[1:])
	}
	if len(out) < 10 {
		t.Fatalf("found only %d snapferry examples in %s", len(out), path)
	}
	return out
}

// shellWords splits a command line as sh does for the README's examples: blanks separate
// words, single and double quotes group.
func shellWords(t *testing.T, s string) []string {
	var words []string
	var w strings.Builder
	in, quote := false, rune(0)
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
		default:
			w.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		t.Fatalf("unbalanced quote in README example %q", s)
	}
	if in {
		words = append(words, w.String())
	}
	return words
}

// TestReadmeExamplesParse: every example in README.md is a command line this snapferry accepts
// as written: the command exists, every flag is known and takes the value given, the positional
// arguments fit; a `cron add` example is stored as a job (schedule, mail settings, the job's own
// command line), so an example that would fail at 2 a.m. fails here.
func TestReadmeExamplesParse(t *testing.T) {
	for _, doc := range exampleDocs {
		t.Run(filepath.Base(doc), func(t *testing.T) {
			t.Setenv("SNAPFERRY_HOME", t.TempDir()) // each document's cron jobs on their own
			for _, args := range docCommands(t, doc) {
				checkExample(t, doc, args)
			}
		})
	}
}

// checkExample parses one example with the real command definitions, or stores it as a job.
func checkExample(t *testing.T, doc string, args []string) {
	line := strings.Join(args, " ")
	if args[0] == "cron" && len(args) > 1 && args[1] == "add" {
		if r := runIn(t, args...); r.code != 0 {
			t.Errorf("%s example `snapferry %s` fails: exit %d\n%s", doc, line, r.code, r.stderr)
		}
		return
	}
	root := newRootCmd(&app{})
	c, rest, err := root.Find(args)
	if err != nil || c == root {
		t.Errorf("%s example `snapferry %s`: no such command (%v)", doc, line, err)
		return
	}
	if err := c.ParseFlags(rest); err != nil {
		t.Errorf("%s example `snapferry %s`: %v", doc, line, err)
		return
	}
	if c.Args != nil {
		if err := c.Args(c, c.Flags().Args()); err != nil {
			t.Errorf("%s example `snapferry %s`: %v", doc, line, err)
		}
	}
}
