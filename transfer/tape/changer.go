package tape

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// VolumeRequest says which tape a Changer must load into the drive.
type VolumeRequest struct {
	Device string // the drive (or virtual tape path)
	Pool   string
	Volume string // a specific volume (restores); "" means any labeled volume of Pool with room
	Full   string // the volume that just filled up, when writing spans
	Reason string // "write" or "read"
}

func (r VolumeRequest) String() string {
	if r.Volume != "" {
		return fmt.Sprintf("volume %s of pool %s", r.Volume, r.Pool)
	}
	return fmt.Sprintf("another labeled volume of pool %s (%s is full)", r.Pool, r.Full)
}

// Changer makes the requested tape available at the drive's path. The drive is closed while
// it runs and reopened (and its label checked) after it returns.
type Changer func(ctx context.Context, req VolumeRequest) error

// HookChanger runs command with `sh -c` (a robot's changer script, or a test's tape swap). The
// request is passed in the environment: SNAPFERRY_TAPE_DEVICE, SNAPFERRY_TAPE_POOL,
// SNAPFERRY_TAPE_VOLUME, SNAPFERRY_TAPE_FULL and SNAPFERRY_TAPE_REASON. Exit status 0 means
// the tape is loaded. Its output goes to log.
func HookChanger(command string, log io.Writer) Changer {
	return func(ctx context.Context, req VolumeRequest) error {
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
		cmd.Env = append(os.Environ(),
			"SNAPFERRY_TAPE_DEVICE="+req.Device, "SNAPFERRY_TAPE_POOL="+req.Pool,
			"SNAPFERRY_TAPE_VOLUME="+req.Volume, "SNAPFERRY_TAPE_FULL="+req.Full,
			"SNAPFERRY_TAPE_REASON="+req.Reason)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if log != nil && out.Len() > 0 {
			io.WriteString(log, out.String())
		}
		if err != nil {
			return fmt.Errorf("changer %q for %s: %w: %s", command, req, err, strings.TrimSpace(out.String()))
		}
		return nil
	}
}

// PromptChanger asks an operator on out to load the tape and waits for Enter on in.
func PromptChanger(in io.Reader, out io.Writer) Changer {
	br := bufio.NewReader(in)
	return func(ctx context.Context, req VolumeRequest) error {
		fmt.Fprintf(out, "Load %s into %s and press Enter (Ctrl-C to stop): ", req, req.Device)
		if _, err := br.ReadString('\n'); err != nil {
			return fmt.Errorf("waiting for the operator to load %s: %w", req, err)
		}
		return ctx.Err()
	}
}
