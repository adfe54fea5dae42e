package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
			spec := fmt.Sprintf("%s://%s@%s/%s", scheme, s.User, s.Addr, filepath.Join(dir, "repo"))
			ssh := []string{"--identity", s.ClientKey, "--known-hosts", s.KnownHosts}
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
	spec := fmt.Sprintf("ssh://%s@%s/%s", s.User, s.Addr, filepath.Join(dir, "repo"))
	r := sf(t, home, "init", spec, "--identity", s.ClientKey, "--known-hosts", kh)
	if r.code == 0 || !strings.Contains(r.stderr, "SHA256:") || !strings.Contains(r.stderr, "--accept-new-host-key") {
		t.Fatalf("unknown host: exit %d, stderr %s", r.code, r.stderr)
	}
	mustSF(t, home, 0, "init", spec, "--identity", s.ClientKey, "--known-hosts", kh, "--accept-new-host-key")
	mustSF(t, home, 0, "snapshots", "--repo", spec, "--identity", s.ClientKey, "--known-hosts", kh)
}
