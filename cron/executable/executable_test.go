package executable

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestPathWithProc(t *testing.T) {
	p, err := Path()
	self, _ := os.Executable()
	if err != nil || p != self {
		t.Fatalf("Path() = %q, %v; want %q", p, err, self)
	}
}

// Without /proc (ESXi) argv[0] stands in: a bare name from PATH, a relative path made absolute.
func TestPathWithoutProc(t *testing.T) {
	noProc := func() (string, error) { return "", errors.New("no /proc") }
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh on PATH")
	}
	if got, err := find(noProc, "sh"); err != nil || got != sh {
		t.Fatalf("find(sh) = %q, %v; want %q", got, err, sh)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "snapferry")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	if got, err := find(noProc, "./snapferry"); err != nil || got != bin {
		t.Fatalf("find(./snapferry) = %q, %v; want %q", got, err, bin)
	}
	for _, argv0 := range []string{"", "no-such-snapferry-binary", "./no-such-snapferry"} {
		if _, err := find(noProc, argv0); err == nil || !strings.Contains(err.Error(), "full path") {
			t.Errorf("find(%q): %v, want an error that says to run it by its full path", argv0, err)
		}
	}
}
