package cron

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// CommandRunner runs a host command and returns its combined output. Installs call crontab(1),
// kill/crond and esxcli through it, so tests substitute commands and production uses ExecRunner.
type CommandRunner func(ctx context.Context, name string, args ...string) ([]byte, error)

// ExecRunner runs the command with os/exec; a failure's error carries the command line and the
// first part of its output.
func ExecRunner(ctx context.Context, name string, args ...string) ([]byte, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if len(msg) > 500 {
			msg = msg[:500] + "..."
		}
		if msg != "" {
			return out.Bytes(), fmt.Errorf("run %s %s: %w: %s", name, strings.Join(args, " "), err, msg)
		}
		return out.Bytes(), fmt.Errorf("run %s %s: %w", name, strings.Join(args, " "), err)
	}
	return out.Bytes(), nil
}
