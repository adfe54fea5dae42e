package remoterun_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/transfer/deploy"
	"github.com/snapferry/snapferry/transfer/remoterun"
	"github.com/snapferry/snapferry/transfer/sshtest"
)

// TestMain lets the deployed test binary play a remote snapferry job: with CancelFlag it runs
// under WatchStdin exactly as the CLI must, prints, and on cancellation writes the marker file
// named by its last argument (its "cleanup") before exiting 130.
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == remoterun.CancelFlag && os.Args[2] == "job" {
		os.Exit(fakeJob(os.Args[3:]))
	}
	os.Exit(m.Run())
}

func fakeJob(args []string) int {
	ctx, cancel := remoterun.WatchStdin(context.Background(), os.Stdin)
	defer cancel()
	fmt.Println("job started on the remote host")
	if len(args) == 2 && args[0] == "exit" {
		n, _ := strconv.Atoi(args[1])
		return n
	}
	select {
	case <-ctx.Done():
		_ = os.WriteFile(args[len(args)-1], []byte(context.Cause(ctx).Error()), 0o644)
		return 130
	case <-time.After(30 * time.Second):
		return 99
	}
}

func launchOptions(t *testing.T, s *sshtest.Server, args ...string) remoterun.LaunchOptions {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return remoterun.LaunchOptions{
		SSH:    s.ConnConfig(),
		Deploy: deploy.Options{LocalBinary: self, RemotePath: filepath.Join(s.Dir, "bin", "snapferry-test")},
		Args:   args,
	}
}

func TestLaunchExitStatus(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	out := &sshtest.Buffer{}
	opts := launchOptions(t, s, "job", "exit", "3")
	opts.Run.Stdout = out
	res, err := remoterun.Launch(context.Background(), opts)
	if err != nil || res.ExitStatus != 3 {
		t.Fatalf("Launch = %+v, %v; want exit status 3", res, err)
	}
	if !strings.Contains(out.String(), "job started on the remote host") {
		t.Fatalf("remote output not streamed back: %q", out.String())
	}
}

// TestLaunchCancelRunsRemoteCleanup is the whole --host path: deploy, run, Ctrl-C here, and the
// job there notices through WatchStdin and runs its cleanup.
func TestLaunchCancelRunsRemoteCleanup(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	marker := filepath.Join(t.TempDir(), "cleanup-ran")
	out := &sshtest.Buffer{}
	opts := launchOptions(t, s, "job", marker)
	opts.Run.Stdout = out
	res, err := cancelWhenReady(t, out, "job started", func(ctx context.Context) (remoterun.Result, error) {
		return remoterun.Launch(ctx, opts)
	})
	if !errors.Is(err, remoterun.ErrCancelled) || res.ExitStatus != 130 {
		t.Fatalf("Launch = %+v, %v; want cancelled with 130", res, err)
	}
	b, err := os.ReadFile(marker)
	if err != nil || !strings.Contains(string(b), remoterun.ErrStdinClosed.Error()) {
		t.Fatalf("remote cleanup marker: %q, %v", b, err)
	}
}
