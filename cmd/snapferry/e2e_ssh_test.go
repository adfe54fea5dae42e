package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron/exitcode"
	"github.com/snapferry/snapferry/cron/testkit"
	"github.com/snapferry/snapferry/images/disk/disktest"

	"github.com/snapferry/snapferry/transfer/sshtest"
)

// TestRemoteStoresRoundTrip backs up and restores through ssh:// (this binary deployed to the far
// side and run as `serve`) and sftp:// (repository logic here, files over SFTP) against a real
// OpenSSH sshd on 127.0.0.1.
func TestRemoteStoresRoundTrip(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	for _, scheme := range []string{"ssh", "sftp"} {
		t.Run(scheme, func(t *testing.T) {
			dir := t.TempDir()
			home := filepath.Join(dir, "state")
			img := filepath.Join(dir, "disk.img")
			sparseImage(t, img, 256<<20, 1, 2, 100)
			spec := s.Spec(scheme, filepath.Join(dir, "repo"))
			ssh := s.Flags()
			mustSF(t, home, 0, append([]string{"init", spec}, ssh...)...)
			mustSF(t, home, 0, append([]string{"backup", img, "--to", spec}, ssh...)...)
			f, _ := os.OpenFile(img, os.O_RDWR, 0)
			writeRandom(t, f, 50)
			f.Close()
			r := mustSF(t, home, 0, append([]string{"backup", img, "--to", spec}, ssh...)...)
			if !strings.Contains(r.stdout, "1 new / 3 reused") && !strings.Contains(r.stdout, "2 new / 3 reused") {
				t.Fatalf("incremental over %s did not reuse blocks:\n%s", scheme, r.stdout)
			}
			mustSF(t, home, 0, append([]string{"check", "--repo", spec, "--read-data"}, ssh...)...)
			out := filepath.Join(dir, "out")
			mustSF(t, home, 0, append([]string{"restore", "latest", "--from", spec, "--target", out}, ssh...)...)
			if disktest.FileSum(t, filepath.Join(out, "disk.img")) != disktest.FileSum(t, img) {
				t.Fatalf("restore over %s differs", scheme)
			}
		})
	}
}

// TestUnknownHostKeyRefused: without a known_hosts entry the connection is refused with the
// fingerprint and the flag that accepts it; with the flag it works and is remembered.
func TestUnknownHostKeyRefused(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	dir := t.TempDir()
	home := filepath.Join(dir, "state")
	kh := filepath.Join(dir, "known_hosts")
	spec := s.Spec("ssh", filepath.Join(dir, "repo"))
	r := sf(t, home, "init", spec, "--identity", s.ClientKey, "--known-hosts", kh)
	if r.code == 0 || !strings.Contains(r.stderr, "SHA256:") || !strings.Contains(r.stderr, "--accept-new-host-key") {
		t.Fatalf("unknown host: exit %d, stderr %s", r.code, r.stderr)
	}
	mustSF(t, home, 0, "init", spec, "--identity", s.ClientKey, "--known-hosts", kh, "--accept-new-host-key")
	mustSF(t, home, 0, "snapshots", "--repo", spec, "--identity", s.ClientKey, "--known-hosts", kh)
}

// TestInterruptOverSSHSaysInterrupted: Ctrl-C during a backup to ssh:// ends with exit 130 and
// the message "interrupted", not the closed link the cancellation caused ("wire link lost").
func TestInterruptOverSSHSaysInterrupted(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	dir := t.TempDir()
	home := filepath.Join(dir, "state")
	img := filepath.Join(dir, "disk.img")
	sparseImage(t, img, 512<<20, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
	spec := s.Spec("ssh", filepath.Join(dir, "repo"))
	ssh := s.Flags()
	mustSF(t, home, 0, append([]string{"init", spec}, ssh...)...)
	cmd := exec.Command(binPath, append([]string{"backup", img, "--to", spec, "--bwlimit=256K"}, ssh...)...)
	cmd.Env = append(os.Environ(), "SNAPFERRY_HOME="+home)
	var out sshtest.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The backup is under way once its job shows as running in the history.
	testkit.Eventually(t, time.Minute, "the backup to start sending", func() bool {
		r := sf(t, home, "jobs", "--json")
		return strings.Contains(r.stdout, `"state": "active"`)
	})
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitcode.Interrupted {
		t.Fatalf("exit %v, want %d\n%s", err, exitcode.Interrupted, out.String())
	}
	if text := out.String(); !strings.Contains(text, "snapferry backup: interrupted") || strings.Contains(text, "link lost") {
		t.Fatalf("message after Ctrl-C:\n%s", text)
	}
}
