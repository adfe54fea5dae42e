package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/snapferry/snapferry/transfer/sshtest"
)

// TestMountDeadLinkGivesEIO mounts an ssh:// repository through a proxy, then freezes the proxy
// (the far host stops answering without closing anything, as a pulled cable does): a read that
// needs the repository gets EIO once the keepalive gives up, instead of a process stuck in the
// kernel, and Ctrl-C still unmounts.
func TestMountDeadLinkGivesEIO(t *testing.T) {
	needFUSE(t)
	dir := t.TempDir()
	img, _ := guestDiskImage(t, dir)
	s := sshtest.Start(t, sshtest.Options{})
	home := filepath.Join(dir, "state")
	repoPath := filepath.Join(dir, "repo")
	ssh := s.Flags()
	direct := fmt.Sprintf("ssh://%s@%s%s", s.User, s.Addr, repoPath)
	mustSF(t, home, 0, append([]string{"init", direct}, ssh...)...)
	mustSF(t, home, 0, append([]string{"backup", img, "--to", direct}, ssh...)...)

	p := sshtest.NewProxy(t, s.Addr)
	known := filepath.Join(dir, "known_hosts_proxy")
	if err := os.WriteFile(known, []byte(s.KnownHostsLine(p.Addr)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	cmd := startMount(t, home, fmt.Sprintf("ssh://%s@%s%s", s.User, p.Addr, repoPath), mnt,
		"--identity", s.ClientKey, "--known-hosts", known)
	snaps, _ := os.ReadDir(filepath.Join(mnt, "snapshots"))
	if len(snaps) != 1 {
		t.Fatalf("%d snapshot folders, want 1", len(snaps))
	}
	disk := filepath.Join(mnt, "snapshots", snaps[0].Name(), "disk.img")
	fi, err := os.Stat(disk)
	if err != nil {
		t.Fatal(err)
	}

	p.Freeze()
	got := make(chan error, 1)
	go func() { _, err := os.ReadFile(disk); got <- err }()
	select {
	case err := <-got:
		if !errors.Is(err, syscall.EIO) {
			t.Fatalf("read of the %d-byte disk over a dead link: %v, want EIO", fi.Size(), err)
		}
	case <-time.After(3 * time.Minute): // keepalives give up after ~15 s; this only catches a hang
		t.Fatal("a read over a dead link hung instead of failing with EIO")
	}
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done: // its exit status is the dead link's, not asserted
	case <-time.After(2 * time.Minute): // a hang detector, not a timing target
		t.Fatal("mount did not end after Ctrl-C over a dead link")
	}
	if isMounted(mnt) {
		t.Fatal("still mounted after Ctrl-C")
	}
}
