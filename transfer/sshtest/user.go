package sshtest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/snapferry/snapferry/cron/testkit"
)

// newUser creates a throwaway login account whose home is below dir and makes dir readable to
// it (sshd reads authorized_keys with the user's rights). It returns the name and the home.
func newUser(t testing.TB, dir string) (name, home string) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "creating a throwaway user needs root")
	}
	useradd := FindTool(t, "useradd", "/usr/sbin/useradd")
	var b [4]byte
	_, _ = rand.Read(b[:])
	name = "sshtest" + hex.EncodeToString(b[:])
	home = filepath.Join(dir, "home")
	// The temp dirs are 0700; the account must be able to reach its home and authorized_keys.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatalf("sshtest: chmod %s: %v", d, err)
		}
	}
	// Password "*": no password login, but not "locked" ("!"), which sshd without PAM refuses
	// even for key logins.
	out, err := exec.Command(useradd, "--home-dir", home, "--create-home", "--shell", "/bin/sh",
		"--user-group", "--password", "*", name).CombinedOutput()
	if err != nil {
		t.Fatalf("sshtest: useradd %s: %v\n%s", name, err, out)
	}
	return name, home
}

func removeUser(t testing.TB, name string) {
	userdel := FindTool(t, "userdel", "/usr/sbin/userdel")
	// -f: a session process of the user may still be exiting.
	if out, err := exec.Command(userdel, "-f", name).CombinedOutput(); err != nil {
		t.Errorf("sshtest: userdel %s: %v\n%s", name, err, out)
	}
}

// missing skips the test, or fails it when CI is set: the project's rule for absent tools.
func missing(t testing.TB, why string) {
	t.Helper()
	testkit.Require(t, false, "sshtest: %s", why)
}
