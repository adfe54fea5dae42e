package disktest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/cron/testkit"
)

// ESXiMissingSyscalls are the syscalls the profile makes fail with ENOSYS in tests: those VMkernel
// may lack. epoll_pwait stays out: test binaries are stock builds; the overlay that avoids it is
// proven on the release binary by `make esxi-check`.
const ESXiMissingSyscalls = "epoll_pwait2,pidfd_open,pidfd_send_signal,clone3,close_range,getrandom,copy_file_range,splice,io_uring_setup,statx"

// ESXiProfile returns scripts/esxi-profile.sh, set up (ESXI_PROFILE_SYSCALLS) to run a command
// the way the ESXi shell lets it run: no /proc, ESXiMissingSyscalls failing. Missing strace or
// unshare, or no mount namespaces, skip the test, except in CI (which installs them) where they
// fail it.
func ESXiProfile(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "..", "scripts", "esxi-profile.sh")
	for _, need := range []string{"strace", "unshare"} {
		testkit.RequireTool(t, need)
	}
	if _, err := os.Stat(script); err != nil {
		t.Fatalf("the ESXi profile script: %v", err)
	}
	t.Setenv("ESXI_PROFILE_SYSCALLS", ESXiMissingSyscalls)
	if out, err := exec.Command(script, "/bin/true").CombinedOutput(); err != nil {
		if testkit.CI() || !strings.Contains(string(out), "cannot") {
			t.Fatalf("esxi-profile.sh cannot run here: %v: %s", err, out)
		}
		t.Skipf("no mount namespaces here: %s", out)
	}
	return script
}
