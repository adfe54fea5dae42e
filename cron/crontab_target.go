package cron

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// CrontabTarget is a crontab that can be read and replaced as a whole.
type CrontabTarget interface {
	Read(ctx context.Context) (string, error)
	Write(ctx context.Context, text string) error
	String() string
}

// ESXiCrontab is root's crontab on ESXi, read by busybox crond.
const ESXiCrontab = "/var/spool/cron/crontabs/root"

// FileCrontab is a crontab edited as a file (ESXi's root table, or --crontab=FILE).
type FileCrontab struct{ Path string }

// Read returns the file, or "" when it does not exist yet.
func (f FileCrontab) Read(context.Context) (string, error) {
	b, err := readFileOrEmpty(f.Path)
	return string(b), err
}

// Write replaces the file atomically, keeping its permissions (crond wants 0600).
func (f FileCrontab) Write(_ context.Context, text string) error {
	if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
		return fmt.Errorf("write crontab %s: %w", f.Path, err)
	}
	return writeFileAtomic(f.Path, []byte(text), fileMode(f.Path, 0o600))
}

func (f FileCrontab) String() string { return f.Path }

// UserCrontab is the invoking user's crontab on Linux, edited through crontab(1) because the
// spool file belongs to cron and must not be written directly.
type UserCrontab struct {
	Run CommandRunner
	// Command is the crontab program and leading arguments; empty means "crontab" on PATH.
	Command []string
	// TempDir receives the file handed to `crontab FILE`; "" means os.TempDir().
	TempDir string
}

func (u UserCrontab) run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := u.Command
	if len(cmd) == 0 {
		cmd = []string{"crontab"}
	}
	return u.Run(ctx, cmd[0], append(cmd[1:len(cmd):len(cmd)], args...)...)
}

// Read runs `crontab -l`; "no crontab for USER" is an empty table, not an error.
func (u UserCrontab) Read(ctx context.Context) (string, error) {
	out, err := u.run(ctx, "-l")
	if err != nil {
		if strings.Contains(strings.ToLower(string(out)), "no crontab") {
			return "", nil
		}
		return "", fmt.Errorf("read user crontab: %w", err)
	}
	return string(out), nil
}

// Write installs text with `crontab FILE`.
func (u UserCrontab) Write(ctx context.Context, text string) error {
	f, err := os.CreateTemp(u.TempDir, "snapferry-crontab-*")
	if err != nil {
		return fmt.Errorf("write user crontab: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return fmt.Errorf("write user crontab: temp file %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write user crontab: temp file %s: %w", f.Name(), err)
	}
	if _, err := u.run(ctx, f.Name()); err != nil {
		return fmt.Errorf("write user crontab: %w", err)
	}
	return nil
}

func (u UserCrontab) String() string { return "the user's crontab" }
