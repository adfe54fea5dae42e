package wiretest

import (
	"io"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Child is the test binary re-run as a server process (its TestMain serves when it sees the
// environment the test set), reached over its stdin and stdout.
type Child struct {
	Cmd    *exec.Cmd
	Stdin  io.WriteCloser // the server's input: closing it ends the session
	Stdout io.ReadCloser  // the server's output
	Done   chan struct{}  // closed when the process exited
	Err    error          // the exit error, set before Done is closed
}

// StartChild starts the test binary with env added to the environment and no tests selected.
// When the test ends, the child's input is closed and the child is given 10 s to exit before
// it is killed (which fails the test).
func StartChild(t testing.TB, env ...string) *Child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
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
	c := &Child{Cmd: cmd, Stdin: stdin, Stdout: stdout, Done: make(chan struct{})}
	go func() { c.Err = cmd.Wait(); close(c.Done) }()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-c.Done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-c.Done
			t.Errorf("server child did not exit 10s after its input closed")
		}
	})
	return c
}
