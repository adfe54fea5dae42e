package remoterun

import (
	"context"
	"fmt"

	"github.com/snapferry/snapferry/transfer/deploy"
	"github.com/snapferry/snapferry/transfer/sshconn"
)

// CancelFlag is the hidden global flag Launch adds to the remote command line. The CLI must
// answer it by running the command under WatchStdin(ctx, os.Stdin), so that closing the
// session's stdin cancels the job (see the package doc).
const CancelFlag = "--cancel-on-stdin-eof"

// LaunchOptions describe one `--host` run.
type LaunchOptions struct {
	SSH        sshconn.Config // where to connect (Host, Port, User and the key/known_hosts options)
	RemotePath string         // an installed snapferry there (--remote-path); "": deploy this binary
	Deploy     deploy.Options // how to deploy when RemotePath is empty
	Args       []string       // the snapferry arguments to run there, without the binary
	Run        Options        // output writers and grace period
}

// Launch connects, makes sure snapferry is on the host, runs it with Args plus CancelFlag and
// returns how it ended (see Run). The connection is closed before it returns.
func Launch(ctx context.Context, opts LaunchOptions) (Result, error) {
	conn, err := sshconn.Dial(ctx, opts.SSH)
	if err != nil {
		return Result{}, err
	}
	defer conn.Close()
	binary, err := deploy.Locate(ctx, conn.Client, opts.RemotePath, opts.Deploy)
	if err != nil {
		return Result{}, fmt.Errorf("run on %s: %w", conn.Target, err)
	}
	cmd := ShellQuote(append([]string{binary, CancelFlag}, opts.Args...)...)
	res, err := Run(ctx, conn.Client, cmd, opts.Run)
	if err != nil {
		return res, fmt.Errorf("run on %s: %w", conn.Target, conn.Explain(err))
	}
	return res, nil
}
