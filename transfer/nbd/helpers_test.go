package nbd

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// needTool returns the path of a program the test needs; without it the test skips, or fails
// when CI is set (CI installs it).
func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found (CI installs qemu-utils)", name)
		}
		t.Skipf("%s not found", name)
	}
	return p
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// serveQemuNBD exports image read-only through a real qemu-nbd on a unix socket and returns
// the socket path; extra are further qemu-nbd flags (-B bitmap). The server is killed when the
// test ends.
func serveQemuNBD(t testing.TB, image, format string, extra ...string) string {
	t.Helper()
	bin := needTool(t, "qemu-nbd")
	sock := filepath.Join(t.TempDir(), "nbd.sock")
	args := append([]string{"--read-only", "--persistent", "--shared=4", "-f", format, "-x", "disk", "--socket=" + sock}, extra...)
	cmd := exec.Command(bin, append(args, image)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	deadline := time.Now().Add(20 * time.Second)
	for {
		// The socket file appears at bind, before qemu-nbd listens: wait for a connection.
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return sock
		}
		select {
		case <-exited:
			t.Fatalf("qemu-nbd exited: %s", stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("qemu-nbd did not create %s: %s", sock, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}
