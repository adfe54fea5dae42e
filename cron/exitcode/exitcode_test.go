package exitcode

import (
	"errors"
	"fmt"
	"os/exec"
	"testing"
)

func TestOfOnlyReadsError(t *testing.T) {
	if c, ok := Of(fmt.Errorf("wrapped: %w", Usagef("bad %s", "flag"))); !ok || c != Usage {
		t.Fatalf("Of(wrapped usage) = %d, %v", c, ok)
	}
	// A helper tool's exit status is not ours, even though *exec.ExitError has ExitCode().
	err := exec.Command("sh", "-c", "exit 12").Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 12 {
		t.Fatalf("sh exit 12: %v", err)
	}
	if c, ok := Of(fmt.Errorf("vim-cmd: %w", err)); ok {
		t.Fatalf("Of(exec.ExitError 12) = %d, want no status", c)
	}
}

func TestPermanent(t *testing.T) {
	for code, want := range map[int]bool{OK: false, Failed: false, Usage: true, Partial: false,
		NotRepository: true, Locked: false, WrongPassword: true, Interrupted: false} {
		if Permanent(code) != want {
			t.Errorf("Permanent(%d) = %v", code, !want)
		}
	}
}
