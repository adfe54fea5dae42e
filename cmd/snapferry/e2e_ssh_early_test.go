package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofrs/flock"

	"github.com/snapferry/snapferry/pidmgr"
	"github.com/snapferry/snapferry/transfer/sshtest"
)

// TestBackupDialsWhileItRegisters: an incremental backup to ssh:// connects, starts the far
// serve, finishes the wire handshake and reads its image against the block fingerprint cache
// (the prehash pass) while its local start-up work (here: registering the job, held up by the
// test holding the pid registry's lock) is still going, and sends no request before that work is
// done, except the two reads that go out with the wire Hello (config, index listing: they
// change nothing; docs/wire-protocol.md, "Handshake"). It failed when the link was opened only once the repository was needed: the trace showed
// no handshake until the registration gave up on the lock, and no pass at all.
func TestBackupDialsWhileItRegisters(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	dir := t.TempDir()
	home := filepath.Join(dir, "state")
	img := filepath.Join(dir, "disk.img")
	sparseImage(t, img, 16<<20, 1, 5)
	spec := fmt.Sprintf("ssh://%s@%s/%s", s.User, s.Addr, filepath.Join(dir, "repo"))
	ssh := s.Flags()
	mustSF(t, home, 0, append([]string{"init", spec}, ssh...)...)
	mustSF(t, home, 0, append([]string{"backup", img, "--to", spec}, ssh...)...) // writes the cache

	held := flock.New(filepath.Join(home, pidmgr.LockFileName))
	if err := held.Lock(); err != nil {
		t.Fatal(err)
	}
	defer held.Unlock()
	trace := filepath.Join(dir, "trace")
	errPath := filepath.Join(dir, "backup.stderr")
	errFile, err := os.Create(errPath)
	if err != nil {
		t.Fatal(err)
	}
	defer errFile.Close()
	cmd := exec.Command(binPath, append([]string{"backup", img, "--to", spec}, ssh...)...)
	cmd.Env = append(os.Environ(), "SNAPFERRY_HOME="+home, "SNAPFERRY_WIRE_TRACE="+trace)
	cmd.Stderr = errFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer cmd.Process.Kill()

	deadline := time.Now().Add(2 * time.Minute)
	for {
		// The image has two data blocks (MiB 1 and 5), unchanged since the full backup.
		if b, _ := os.ReadFile(trace); strings.Contains(string(b), "wire handshake done") &&
			strings.Contains(string(b), "blocks looked at, 2 of them unchanged") {
			for _, line := range strings.Split(string(b), "\n") {
				if strings.Contains(line, " open  #") && !strings.Contains(line, "load          config @0+0") &&
					!strings.Contains(line, "list          index") {
					t.Fatalf("a request went out before the job was registered:\n%s", b)
				}
			}
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("backup ended (%v) without a handshake and a prehash pass while its job registration waited:\n%s\n%s",
				err, readFile(t, trace), readFile(t, errPath))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no handshake and prehash pass in the trace while the job registration waited:\n%s", readFile(t, trace))
		}
	}
	if logged := readFile(t, errPath); strings.Contains(logged, "still held") {
		t.Fatalf("the handshake came only after the registration gave up on the lock:\n%s", logged)
	}
	if err := held.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err != nil {
		t.Fatalf("backup: %v\n%s", err, readFile(t, errPath))
	}
}
