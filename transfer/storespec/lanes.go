package storespec

import (
	"context"
	"fmt"
	"io"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/snapferry/snapferry/transfer/remotestore"
	"github.com/snapferry/snapferry/transfer/sshconn"
)

// startServe runs cmd (the far `snapferry serve ...`) in a new session on conn and shakes hands
// with it; location names the store (or the lane) in the client's errors. The caller owns the
// session: waitSession ends it after the client is closed.
func startServe(ctx context.Context, conn *sshconn.Client, cmd string, opts Options, location string, tr tracer) (*remotestore.Client, *ssh.Session, error) {
	sess, err := conn.NewSession()
	if err != nil {
		return nil, nil, fmt.Errorf("open store %s: ssh session: %w", location, conn.Explain(err))
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		sess.Close()
		return nil, nil, fmt.Errorf("open store %s: %w", location, err)
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		sess.Close()
		return nil, nil, fmt.Errorf("open store %s: %w", location, err)
	}
	tail := &tailBuffer{max: 4096}
	sess.Stderr = tail
	if opts.ServeLog != nil {
		sess.Stderr = io.MultiWriter(tail, opts.ServeLog)
	}
	if err := sess.Start(cmd); err != nil {
		sess.Close()
		return nil, nil, fmt.Errorf("open store %s: start %s: %w", location, cmd, err)
	}
	tr.printf("far command started: %s", cmd)
	if opts.Upload != nil {
		stdin = opts.Upload(stdin)
	}
	client, err := remotestore.New(ctx, stdout, stdin, remotestore.Options{Location: location, Program: opts.Version})
	if err != nil {
		// Let the session finish first: its stderr is copied by another goroutine, and the
		// remote's last words usually explain the failed handshake.
		_ = waitSession(sess, 5*time.Second)
		if msg := tail.String(); msg != "" {
			return nil, nil, fmt.Errorf("open store %s: %w; the remote %s said: %s", location, err, cmd, msg)
		}
		return nil, nil, fmt.Errorf("open store %s: %w", location, conn.Explain(err))
	}
	return client, sess, nil
}

// laneOpener starts read lanes of the store at s: more sessions on conn running the primary's
// command line unchanged, so a key pinned to one forced command serves them as it serves the
// primary (docs/wire-protocol.md, "Read lanes").
func laneOpener(conn *sshconn.Client, s Spec, cmd string, opts Options, tr tracer) remotestore.LaneOpener {
	return func(ctx context.Context, n int) (*remotestore.Client, func() error, error) {
		location := fmt.Sprintf("%s (read lane %d)", s, n)
		client, sess, err := startServe(ctx, conn, cmd, opts, location, tr)
		if err != nil {
			return nil, nil, err
		}
		return client, func() error { return waitSession(sess, sessionCloseWait) }, nil
	}
}

// withLanes puts read lanes on the primary client of an ssh:// store, unless opts.ReadLanes
// turns them off.
func withLanes(c *remotestore.Client, open remotestore.LaneOpener, opts Options, tr tracer) *remotestore.Laned {
	return remotestore.NewLaned(c, remotestore.LaneOptions{Open: open, Max: opts.ReadLanes,
		After: opts.ReadLanesAfter, Trace: tr.printf})
}
