package cron

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestJobLogRotatesBySize(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenJobLog(dir, "nightly", 100, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		fmt.Fprintf(l, "line %02d %s\n", i, strings.Repeat("x", 30)) // 40 bytes
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	path := JobLogPath(dir, "nightly")
	read := func(p string) string { b, _ := os.ReadFile(p); return string(b) }
	// 2 lines fit in 100 bytes: lines 8-9 current, 6-7 in .1, 4-5 in .2, older ones dropped.
	if cur := read(path); !strings.HasPrefix(cur, "line 08") || strings.Count(cur, "\n") != 2 {
		t.Fatalf("current log %q", cur)
	}
	if r1 := read(path + ".1"); !strings.HasPrefix(r1, "line 06") {
		t.Fatalf(".1 %q", r1)
	}
	if r2 := read(path + ".2"); !strings.HasPrefix(r2, "line 04") {
		t.Fatalf(".2 %q", r2)
	}
	if _, err := os.Stat(path + ".3"); !os.IsNotExist(err) {
		t.Fatal("keep=2 must not leave a .3")
	}
	// Reopening appends to the current file.
	l, _ = OpenJobLog(dir, "nightly", 100, 2)
	fmt.Fprint(l, "again\n")
	l.Close()
	if cur := read(path); !strings.HasSuffix(cur, "again\n") || filepath.Dir(path) != filepath.Join(dir, "logs") {
		t.Fatalf("reopen: %q", cur)
	}
	if _, err := OpenJobLog(dir, "../evil", 100, 2); err == nil {
		t.Fatal("a name with a path must be refused")
	}
}

func TestJobLogKeepZero(t *testing.T) {
	dir := t.TempDir()
	l, _ := OpenJobLog(dir, "j", 10, 0)
	fmt.Fprint(l, "0123456789")
	fmt.Fprint(l, "abc")
	l.Close()
	b, _ := os.ReadFile(JobLogPath(dir, "j"))
	if string(b) != "abc" {
		t.Fatalf("keep=0: %q", b)
	}
	if m, _ := filepath.Glob(JobLogPath(dir, "j") + ".*"); len(m) != 0 {
		t.Fatalf("rotated files left: %v", m)
	}
}
