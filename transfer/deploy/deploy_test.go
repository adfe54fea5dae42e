package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/transfer/sshtest"
)

func copyBinary(t *testing.T, from string) string {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Skipf("no %s to deploy: %v", from, err)
	}
	p := filepath.Join(t.TempDir(), filepath.Base(from))
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDeployWhenAbsentThenReuse(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	c := s.Dial(t)
	ctx := context.Background()
	echo := copyBinary(t, "/bin/echo")
	remote := filepath.Join(t.TempDir(), "remote home", "bin", "snapferry-v1")
	opts := Options{Version: "v1", RemotePath: remote, LocalBinary: echo}

	res, err := Ensure(ctx, c.Client, opts)
	if err != nil || !res.Uploaded || res.Path != remote {
		t.Fatalf("first Ensure = %+v, %v; want upload to %s", res, err, remote)
	}
	sess, _ := c.NewSession()
	out, err := sess.Output(shellQuote(res.Path) + " deployed-ok")
	sess.Close()
	if err != nil || strings.TrimSpace(string(out)) != "deployed-ok" {
		t.Fatalf("running the deployed binary: %q, %v", out, err)
	}
	fi, err := os.Stat(remote)
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("deployed file: %v %v", fi, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(remote))
	if len(entries) != 1 {
		t.Fatalf("temp files left next to the binary: %v", entries)
	}

	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(remote, old, old); err != nil {
		t.Fatal(err)
	}
	res, err = Ensure(ctx, c.Client, opts)
	if err != nil || res.Uploaded {
		t.Fatalf("second Ensure = %+v, %v; want reuse", res, err)
	}
	if fi, _ := os.Stat(remote); !fi.ModTime().Equal(old) {
		t.Fatalf("identical binary was rewritten")
	}
}

func TestDeployReplacesDifferentBinary(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	c := s.Dial(t)
	ctx := context.Background()
	remote := filepath.Join(t.TempDir(), "snapferry-dev")
	// Same version string, same size, other content: a rebuilt dev binary must still replace.
	first := copyBinary(t, "/bin/echo")
	if _, err := Ensure(ctx, c.Client, Options{RemotePath: remote, LocalBinary: first}); err != nil {
		t.Fatal(err)
	}
	second := filepath.Join(t.TempDir(), "echo2")
	b, _ := os.ReadFile(first)
	b[len(b)-1] ^= 0xff
	if err := os.WriteFile(second, b, 0o755); err != nil {
		t.Fatal(err)
	}
	res, err := Ensure(ctx, c.Client, Options{RemotePath: remote, LocalBinary: second})
	if err != nil || !res.Uploaded {
		t.Fatalf("Ensure with changed content = %+v, %v; want upload", res, err)
	}
	got, _ := os.ReadFile(remote)
	if string(got) != string(b) {
		t.Fatal("remote binary is not the new one")
	}
}

func TestDeployRefusesOtherArchitecture(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	c := s.Dial(t)
	arch, err := exec.Command("uname", "-m").Output()
	if err != nil || strings.TrimSpace(string(arch)) != "x86_64" {
		t.Skipf("test patches an x86_64 binary; this host is %q", arch)
	}
	bin := copyBinary(t, "/bin/true")
	b, _ := os.ReadFile(bin)
	b[18], b[19] = 183, 0 // e_machine = EM_AARCH64
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	remote := filepath.Join(t.TempDir(), "snapferry-v1")
	_, err = Ensure(context.Background(), c.Client, Options{RemotePath: remote, LocalBinary: bin})
	if err == nil || !strings.Contains(err.Error(), "aarch64") || !strings.Contains(err.Error(), "--remote-path") {
		t.Fatalf("Ensure of an arm64 binary to x86_64: %v", err)
	}
	if _, statErr := os.Stat(remote); statErr == nil {
		t.Fatal("wrong-architecture binary was uploaded")
	}
}

func TestRemotePathNeedsVersion(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	c := s.Dial(t)
	for _, v := range []string{"", "../x", "a b"} {
		_, err := Ensure(context.Background(), c.Client, Options{Version: v, LocalBinary: "/bin/true"})
		if err == nil || !strings.Contains(err.Error(), "--remote-path") {
			t.Errorf("version %q: %v", v, err)
		}
	}
}

func TestFromArgv0(t *testing.T) {
	p, err := fromArgv0("sh")
	if err != nil || !filepath.IsAbs(p) {
		t.Fatalf("fromArgv0(sh) = %q, %v", p, err)
	}
	if _, err := fromArgv0(""); err == nil {
		t.Fatal("empty argv[0] accepted")
	}
	if _, err := fromArgv0("./no-such-snapferry"); err == nil {
		t.Fatal("missing file accepted")
	}
	self, err := SelfPath()
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(self); err != nil || fi.IsDir() {
		t.Fatalf("SelfPath %s: %v", self, err)
	}
}

// TestDefaultPathInLoginHome logs in as a throwaway account (its home is a temp dir) so the
// default ~/.snapferry/bin/snapferry-VERSION can be checked without touching a real home.
func TestDefaultPathInLoginHome(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{NewUser: true})
	c := s.Dial(t)
	echo := copyBinary(t, "/bin/echo")
	sum, _, err := fileSum(echo)
	if err != nil {
		t.Fatal(err)
	}
	// An older build of the same version is replaced; another version's binary stays. They are
	// made as the login user, over SSH, as an earlier deploy would have.
	bin := filepath.Join(s.Home, ".snapferry", "bin")
	older := filepath.Join(bin, "snapferry-1.2.3-0123456789abcdef")
	other := filepath.Join(bin, "snapferry-1.2.2-0123456789abcdef")
	asUser := func(cmd string) {
		t.Helper()
		sess, _ := c.NewSession()
		defer sess.Close()
		if out, err := sess.CombinedOutput(cmd); err != nil {
			t.Fatalf("%s: %v %s", cmd, err, out)
		}
	}
	asUser("mkdir -p " + shellQuote(bin) + " && echo old > " + shellQuote(older) + " && echo old > " + shellQuote(other))
	res, err := Ensure(context.Background(), c.Client, Options{Version: "1.2.3", LocalBinary: echo})
	want := filepath.Join(bin, "snapferry-1.2.3-"+sum[:16])
	if err != nil || res.Path != want || !res.Uploaded {
		t.Fatalf("Ensure = %+v, %v; want upload to %s", res, err, want)
	}
	if _, err := os.Stat(older); !os.IsNotExist(err) {
		t.Errorf("older build of the same version left behind: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another version's binary was removed: %v", err)
	}
	sess, _ := c.NewSession()
	if out, err := sess.Output(shellQuote(res.Path) + " as-user"); err != nil || strings.TrimSpace(string(out)) != "as-user" {
		t.Fatalf("run deployed binary as %s: %q, %v", s.User, out, err)
	}
	sess.Close()
	// The second run trusts the checksum in the name and reads nothing back: even a file of the
	// right size with other bytes is reused (it could only get that name through a verified
	// upload, or from someone who can write the login's home anyway).
	asUser("head -c $(wc -c < " + shellQuote(want) + ") /dev/zero > " + shellQuote(want) + ".x && mv " + shellQuote(want) + ".x " + shellQuote(want))
	again, err := Ensure(context.Background(), c.Client, Options{Version: "1.2.3", LocalBinary: echo})
	if err != nil || again.Uploaded || again.Path != want {
		t.Fatalf("second Ensure = %+v, %v; want reuse of %s", again, err, want)
	}
}
