package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/snapferry/snapferry/transfer/remotestore"
)

// TestServeGrowsItsPipes: serve enlarges the stdin and stdout pipes sshd gives it to 1 MiB, so an
// upload or restore moves through sshd in large writes (docs/benchmarks.md: sshd's CPU time in
// a 1 GB upload fell by ~40%). The test owns the other ends and reads their size after the
// handshake; before serve grew them they stayed at the kernel's 64 KiB.
func TestServeGrowsItsPipes(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "repo")
	if err := os.MkdirAll(root, 0o700); err != nil {
		t.Fatal(err)
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binPath, "serve", "--root="+root)
	cmd.Env = append(os.Environ(), "SNAPFERRY_HOME="+filepath.Join(dir, "state"))
	cmd.Stdin, cmd.Stdout = inR, outW
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	inR.Close()
	outW.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := remotestore.New(ctx, outR, inW, remotestore.Options{Program: "test"})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	for name, f := range map[string]*os.File{"stdin": inW, "stdout": outR} {
		n, err := unix.FcntlInt(f.Fd(), unix.F_GETPIPE_SZ, 0)
		if err != nil {
			t.Fatal(err)
		}
		if n != 1<<20 {
			t.Errorf("serve's %s pipe holds %d bytes, want 1 MiB", name, n)
		}
	}
	c.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	outR.Close()
}
