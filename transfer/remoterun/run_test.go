package remoterun_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/transfer/remoterun"
	"github.com/snapferry/snapferry/transfer/sshtest"
)

func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "job.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExitStatusAndStreams(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	c := s.Dial(t)
	script := writeScript(t, "echo out-line; echo err-line >&2; exit 3\n")
	var out, errb bytes.Buffer
	res, err := remoterun.Run(context.Background(), c.Client, remoterun.ShellQuote(script),
		remoterun.Options{Stdout: &out, Stderr: &errb})
	if err != nil || res.ExitStatus != 3 || res.Cancelled {
		t.Fatalf("Run = %+v, %v; want status 3", res, err)
	}
	if out.String() != "out-line\n" || errb.String() != "err-line\n" {
		t.Fatalf("stdout %q stderr %q", out.String(), errb.String())
	}
	res, err = remoterun.Run(context.Background(), c.Client, "true", remoterun.Options{})
	if err != nil || res.ExitStatus != 0 {
		t.Fatalf("Run(true) = %+v, %v", res, err)
	}
}

// TestStreamsLiveAndCancel: output must show up while the job runs, and cancelling must make
// the job run its cleanup on the remote side. OpenSSH delivers the TERM only to non-root,
// non-forced sessions (root sessions run in the monitor process, which refuses signals), so a
// job must handle both; whichever arrives first, its cleanup has to have run when Run returns.
func TestStreamsLiveAndCancel(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	c := s.Dial(t)
	marker := filepath.Join(t.TempDir(), "cleanup")
	script := writeScript(t, `trap 'echo term > "$1"; exit 143' TERM
echo ready
while read line; do :; done
echo stdin-eof > "$1"
exit 130
`)
	out := &sshtest.Buffer{}
	res, err := cancelWhenReady(t, out, "ready", func(ctx context.Context) (remoterun.Result, error) {
		return remoterun.Run(ctx, c.Client, remoterun.ShellQuote(script, marker), remoterun.Options{Stdout: out})
	})
	if !errors.Is(err, remoterun.ErrCancelled) || !errors.Is(err, context.Canceled) || !res.Cancelled {
		t.Fatalf("cancelled Run = %+v, %v", res, err)
	}
	b, err := os.ReadFile(marker)
	got := strings.TrimSpace(string(b))
	want := map[string]int{"term": 143, "stdin-eof": 130}
	if err != nil || want[got] == 0 || want[got] != res.ExitStatus {
		t.Fatalf("remote cleanup marker %q (%v) with exit status %d", got, err, res.ExitStatus)
	}
}

// TestCancelByStdinEOF runs under a forced command, where sshd refuses to deliver signals: the
// closed stdin is then the only thing that tells the job to stop.
func TestCancelByStdinEOF(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "cleanup")
	script := filepath.Join(dir, "forced.sh")
	body := "#!/bin/sh\ntrap '' TERM\necho ready\nwhile read line; do :; done\necho stdin-eof > " + marker + "\nexit 7\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	s := sshtest.Start(t, sshtest.Options{KeyOptions: `command="` + script + `"`})
	c := s.Dial(t)
	out := &sshtest.Buffer{}
	res, err := cancelWhenReady(t, out, "ready", func(ctx context.Context) (remoterun.Result, error) {
		return remoterun.Run(ctx, c.Client, "anything", remoterun.Options{Stdout: out})
	})
	if !errors.Is(err, remoterun.ErrCancelled) || res.ExitStatus != 7 {
		t.Fatalf("Run = %+v, %v; want cancelled with status 7", res, err)
	}
	if b, err := os.ReadFile(marker); err != nil || strings.TrimSpace(string(b)) != "stdin-eof" {
		t.Fatalf("remote cleanup marker: %q, %v", b, err)
	}
}

func TestGraceExceeded(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	c := s.Dial(t)
	script := writeScript(t, "trap '' TERM\necho ready\nexec sleep 30 < /dev/null\n")
	out := &sshtest.Buffer{}
	start := time.Now()
	_, err := cancelWhenReady(t, out, "ready", func(ctx context.Context) (remoterun.Result, error) {
		return remoterun.Run(ctx, c.Client, remoterun.ShellQuote(script), remoterun.Options{Stdout: out, Grace: 300 * time.Millisecond})
	})
	if !errors.Is(err, remoterun.ErrCancelled) || !strings.Contains(err.Error(), "did not stop") {
		t.Fatalf("Run = %v; want a grace timeout", err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("Run took %s with a 300ms grace period", d)
	}
}

func TestWatchStdin(t *testing.T) {
	r, w := io.Pipe()
	ctx, cancel := remoterun.WatchStdin(context.Background(), r)
	defer cancel()
	if _, err := w.Write([]byte("noise\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
		t.Fatal("context ended while stdin is open")
	case <-time.After(50 * time.Millisecond):
	}
	w.Close()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("context not ended by stdin EOF")
	}
	if !errors.Is(context.Cause(ctx), remoterun.ErrStdinClosed) {
		t.Fatalf("cause = %v", context.Cause(ctx))
	}
	// A job that returns the cause instead of ctx.Err() still reads as cancelled (exit 130).
	if !errors.Is(context.Cause(ctx), context.Canceled) {
		t.Fatalf("cause %v does not match context.Canceled", context.Cause(ctx))
	}
}

func TestShellQuote(t *testing.T) {
	got := remoterun.ShellQuote("/opt/snap ferry", "backup", "--vm=web's", "--to=ssh://h/p", "")
	want := `'/opt/snap ferry' backup '--vm=web'\''s' --to=ssh://h/p ''`
	if got != want {
		t.Fatalf("ShellQuote = %s\nwant          %s", got, want)
	}
}

// TestCancelDeliversTERM logs in as an ordinary account, where OpenSSH does deliver the signal
// request: the job's TERM trap must run even though it never reads stdin.
func TestCancelDeliversTERM(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{NewUser: true})
	c := s.Dial(t)
	marker := filepath.Join(s.Home, "cleanup")
	script := filepath.Join(s.Home, "job.sh")
	body := "#!/bin/sh\ntrap 'echo term > \"$1\"; exit 143' TERM\necho ready\nwhile :; do sleep 0.1; done < /dev/null\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	out := &sshtest.Buffer{}
	res, err := cancelWhenReady(t, out, "ready", func(ctx context.Context) (remoterun.Result, error) {
		return remoterun.Run(ctx, c.Client, remoterun.ShellQuote(script, marker), remoterun.Options{Stdout: out})
	})
	if !errors.Is(err, remoterun.ErrCancelled) || res.ExitStatus != 143 {
		t.Fatalf("Run = %+v, %v; want cancelled with status 143", res, err)
	}
	if b, err := os.ReadFile(marker); err != nil || strings.TrimSpace(string(b)) != "term" {
		t.Fatalf("TERM trap marker: %q, %v", b, err)
	}
}

// cancelWhenReady runs fn, cancels its context once out shows ready (checking that the job did
// not end on its own first), and returns fn's result.
func cancelWhenReady(t *testing.T, out *sshtest.Buffer, ready string,
	fn func(ctx context.Context) (remoterun.Result, error)) (remoterun.Result, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type ret struct {
		res remoterun.Result
		err error
	}
	done := make(chan ret, 1)
	go func() {
		res, err := fn(ctx)
		done <- ret{res, err}
	}()
	out.WaitFor(t, ready) // streamed while the job is still running
	select {
	case r := <-done:
		t.Fatalf("job ended before it was cancelled: %+v %v", r.res, r.err)
	case <-time.After(100 * time.Millisecond):
	}
	cancel()
	select {
	case r := <-done:
		return r.res, r.err
	case <-time.After(20 * time.Second):
		t.Fatal("did not return 20s after cancel")
	}
	return remoterun.Result{}, nil
}
