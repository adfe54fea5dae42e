package sshtest

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/pkg/sftp"
)

// TestStartServesOpenSSHClient proves the harness with OpenSSH's own client: the key, the
// known_hosts file and the forced-command option all work as a user's ssh would see them.
func TestStartServesOpenSSHClient(t *testing.T) {
	s := Start(t, Options{})
	sshBin := FindTool(t, "ssh", "/usr/bin/ssh")
	run := func(key string, args ...string) (string, error) {
		base := []string{"-F", "/dev/null", "-i", key, "-p", strconv.Itoa(s.Port),
			"-o", "UserKnownHostsFile=" + s.KnownHosts, "-o", "StrictHostKeyChecking=yes",
			"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", s.User + "@" + s.Host}
		out, err := exec.Command(sshBin, append(base, args...)...).CombinedOutput()
		return string(out), err
	}
	out, err := run(s.ClientKey, "echo", "hello-from-sshd")
	if err != nil || !strings.Contains(out, "hello-from-sshd") {
		t.Fatalf("ssh echo: %v\n%s", err, out)
	}
	forced := s.AddClientKey(t, "ecdsa", `command="echo forced:$SSH_ORIGINAL_COMMAND",restrict`)
	out, err = run(forced, "ls", "/")
	if err != nil || !strings.Contains(out, "forced:ls /") {
		t.Fatalf("forced command key: %v\n%s", err, out)
	}
	if _, err := os.Stat(s.Log); err != nil {
		t.Fatalf("sshd log missing: %v", err)
	}
}

func TestCloseStopsListener(t *testing.T) {
	s := Start(t, Options{})
	s.Close()
	if err := waitBanner(s.Addr); err == nil {
		t.Fatalf("sshd still answers on %s after Close", s.Addr)
	}
}

func TestNewUserLogsInAsThatUser(t *testing.T) {
	s := Start(t, Options{NewUser: true})
	c := s.Dial(t)
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	out, err := sess.Output("id -un; pwd")
	if err != nil {
		t.Fatalf("run as %s: %v", s.User, err)
	}
	if want := s.User + "\n" + s.Home + "\n"; string(out) != want {
		t.Fatalf("got %q, want %q", out, want)
	}
}

// Tests never write into the real home of whoever runs them: a server for the current user
// gives its sessions a temporary home of the test's own ($HOME for commands, the SFTP start folder for
// relative paths, which is where deploy puts ~/.snapferry/bin).
func TestSessionsGetTheTestsHome(t *testing.T) {
	s := Start(t, Options{})
	if real, _ := os.UserHomeDir(); s.Home == real || strings.HasPrefix(real, s.Home) || !strings.Contains(s.Home, "sshtest-home-") {
		t.Fatalf("Home %s is not a folder of the test's own (real home %s)", s.Home, real)
	}
	c := s.Dial(t)
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	out, err := sess.Output(`printf %s "$HOME"`)
	if err != nil || string(out) != s.Home {
		t.Fatalf("$HOME in a session: %q, %v; want %s", out, err, s.Home)
	}
	sc, err := sftp.NewClient(c.Client)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if wd, err := sc.Getwd(); err != nil || wd != s.Home {
		t.Fatalf("SFTP start folder %q, %v; want %s", wd, err, s.Home)
	}
}
