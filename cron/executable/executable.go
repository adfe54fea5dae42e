package executable

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Path returns the absolute path of the running program's file. os.Executable reads
// /proc/self/exe on Linux, which ESXi does not have; there argv[0] stands in: a bare name is
// looked up on PATH, a relative path is made absolute against the working folder.
func Path() (string, error) { return find(os.Executable, os.Args[0]) }

// Resolved is Path with symbolic links resolved, for comparing with what a process table shows.
func Resolved() (string, error) {
	p, err := Path()
	if err != nil {
		return "", err
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	}
	return p, nil
}

func find(executable func() (string, error), argv0 string) (string, error) {
	if p, err := executable(); err == nil && filepath.IsAbs(p) {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if argv0 == "" {
		return "", errors.New("find the snapferry binary: argv[0] is empty; run snapferry by its full path")
	}
	p := argv0
	if !strings.Contains(p, "/") {
		lp, err := exec.LookPath(p)
		if err != nil {
			return "", fmt.Errorf("find the snapferry binary %q: %w; run snapferry by its full path", argv0, err)
		}
		p = lp
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("find the snapferry binary %q: %w", argv0, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return "", fmt.Errorf("find the snapferry binary: %w; run snapferry by its full path", err)
	}
	return abs, nil
}
