package cron

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// BinaryPath returns the absolute path of the running snapferry binary for crontab lines and
// the local.sh stanza. os.Executable reads /proc/self/exe, which ESXi does not have, so it falls
// back to argv0: a path is made absolute against the working folder, a bare name is looked up
// on PATH.
func BinaryPath(argv0 string) (string, error) { return binaryPath(os.Executable, argv0) }

func binaryPath(executable func() (string, error), argv0 string) (string, error) {
	if p, err := executable(); err == nil && filepath.IsAbs(p) {
		return p, nil
	}
	p := argv0
	if !strings.Contains(p, "/") {
		lp, err := exec.LookPath(p)
		if err != nil {
			return "", fmt.Errorf("find the snapferry binary %q for the crontab: %w; run it by its full path", argv0, err)
		}
		p = lp
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("find the snapferry binary %q for the crontab: %w", argv0, err)
	}
	return abs, nil
}
