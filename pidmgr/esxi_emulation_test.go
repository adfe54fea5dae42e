package pidmgr

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/cron/testkit"
)

// The closest this host gets to ESXi: a helper runs with /proc hidden (an empty folder
// bind-mounted over it inside `unshare -m`), under strace answering ENOSYS for the syscalls
// VMkernel may lack, and with `ps` on PATH printing ESXi's `ps -c` layout for its caller. The
// registry must choose the ps -c table by itself, find its executable without /proc/self/exe,
// register, list itself live and shut down cleanly.
func TestRegistryWithoutProcUnderMissingSyscalls(t *testing.T) {
	for _, tool := range []string{"unshare", "strace", "mount"} {
		testkit.RequireTool(t, tool)
	}
	f := newFixture(t)
	shimDir, empty := t.TempDir(), t.TempDir()
	shim := "#!/bin/sh\n" +
		"printf '%-8s %-8s %-45s %s\\n' WID CID WorldName CommandLine\n" +
		"printf '%-8s %-8s %-45s %s\\n' \"$PPID\" \"$PPID\" snapferry \"" + f.exe + " cron run nightly\"\n" +
		"printf '%-8s %-8s %-45s %s\\n' 2099251 2099251 sshd 'sshd: root@pts/0'\n"
	if err := os.WriteFile(filepath.Join(shimDir, "ps"), []byte(shim), 0o755); err != nil {
		t.Fatal(err)
	}
	const missing = "pidfd_open,pidfd_send_signal,pidfd_getfd,clone3,epoll_pwait2,close_range,getrandom,copy_file_range,splice,io_uring_setup"
	script := `mount --bind "$1" /proc && exec strace -f -o /dev/null -e trace=` + missing +
		` -e inject=` + missing + `:error=ENOSYS "$2"`
	cmd := exec.Command("unshare", "-m", "sh", "-c", script, "sh", empty, f.exe)
	cmd.Env = append(os.Environ(), helperEnv+"=esxi", "PIDMGR_DIR="+f.dir, "PATH="+shimDir+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "Operation not permitted") && !testkit.CI() {
			t.Skipf("not allowed to unshare/mount here: %s", out)
		}
		t.Fatalf("helper: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 || lines[0] != "table *pidmgr.PSTable" || lines[2] != "done" {
		t.Fatalf("helper printed:\n%s", out)
	}
	f1 := strings.Fields(lines[1])
	if len(f1) != 5 || f1[0] != "entry" || f1[2] != "cron" || f1[3] != "live" || !strings.HasPrefix(f1[4], "psc:") {
		t.Fatalf("entry line %q: want a live cron entry with a psc: token", lines[1])
	}
	if pid, _ := strconv.Atoi(f1[1]); pid != 0 && pid == os.Getpid() {
		t.Errorf("registered pid %d is the test's own", pid)
	}
	if _, err := os.Stat(filepath.Join(f.dir, FileName)); !os.IsNotExist(err) {
		t.Errorf("registry left behind after shutdown: %v", err)
	}
}
