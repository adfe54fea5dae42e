package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofrs/flock"

	"github.com/snapferry/snapferry/pidmgr"
	"github.com/snapferry/snapferry/transfer/remotestore"
)

// TestServeAnswersBeforeItIsRegistered: serve answers the wire handshake without waiting for its
// entry in the pid registry. The test holds the registry's lock, so the registration cannot
// finish (it would wait 30 s and then warn); the handshake must still be answered, and before the
// warning. It failed when serve registered first: the reply came after "still held" was logged.
func TestServeAnswersBeforeItIsRegistered(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "state")
	root := filepath.Join(dir, "repo")
	for _, d := range []string{home, root} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	held := flock.New(filepath.Join(home, pidmgr.LockFileName))
	if err := held.Lock(); err != nil {
		t.Fatal(err)
	}
	defer held.Unlock()

	errPath := filepath.Join(dir, "serve.stderr")
	errFile, err := os.Create(errPath) // a file, not a pipe: what serve wrote is there at once
	if err != nil {
		t.Fatal(err)
	}
	defer errFile.Close()
	cmd := exec.Command(binPath, "serve", "--root="+root)
	cmd.Env = append(os.Environ(), "SNAPFERRY_HOME="+home)
	cmd.Stderr = errFile
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := remotestore.New(ctx, stdout, stdin, remotestore.Options{Program: "test"})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	logged, err := os.ReadFile(errPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(logged), "still held") {
		t.Fatalf("serve answered only after giving up on the registry lock:\n%s", logged)
	}
	// The registration finishes once the lock is free; the session then ends as usual.
	if err := held.Unlock(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve: %v\n%s", err, readFile(t, errPath))
	}
}
