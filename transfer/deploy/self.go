package deploy

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// SelfPath returns the file of the running executable. os.Executable needs /proc on Linux; on
// ESXi (no /proc) it falls back to argv[0], resolved against PATH when it has no slash.
func SelfPath() (string, error) {
	if p, err := os.Executable(); err == nil {
		if _, statErr := os.Stat(p); statErr == nil {
			return p, nil
		}
	}
	return fromArgv0(os.Args[0])
}

func fromArgv0(arg0 string) (string, error) {
	if arg0 == "" {
		return "", errors.New("find own executable: argv[0] is empty; pass --remote-path to a snapferry installed on the remote host")
	}
	p := arg0
	if !strings.Contains(arg0, "/") {
		found, err := exec.LookPath(arg0)
		if err != nil {
			return "", fmt.Errorf("find own executable %q on PATH: %w", arg0, err)
		}
		p = found
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("find own executable %s: %w", p, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return "", fmt.Errorf("find own executable: %w", err)
	}
	return abs, nil
}
