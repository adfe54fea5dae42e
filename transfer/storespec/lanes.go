package storespec

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/snapferry/snapferry/transfer/remotestore"
	"github.com/snapferry/snapferry/transfer/sshconn"
)

// startServe runs cmd (the far `snapferry serve ...`) in a new session on conn and shakes hands
// with it; location names the store (or the lane) in the client's errors. The caller owns the
// session: waitSession ends it after the client is closed.
func startServe(ctx context.Context, conn *sshconn.Client, cmd string, opts Options, location string, tr tracer, primary bool) (*remotestore.Client, *sshconn.Command, error) {
	tail := &tailBuffer{max: 4096}
	var stderr io.Writer = tail
	if opts.ServeLog != nil {
		stderr = io.MultiWriter(tail, opts.ServeLog)
	}
	// The exec goes out without waiting for its answer, and the wire handshake right behind it
	// (sshconn.StartCommand): one round trip less than ssh.Session.Start.
	sess, err := conn.StartCommand(cmd, stderr)
	if err != nil {
		return nil, nil, fmt.Errorf("open store %s: start %s: %w", location, cmd, conn.Explain(err))
	}
	tr.printf("far command started (1 round trip: the session channel): %s", cmd)
	var stdin io.WriteCloser = sess.Stdin
	if opts.Upload != nil {
		stdin = opts.Upload(stdin)
	}
	ro := remotestore.Options{Location: location, Program: opts.Version}
	if primary {
		// The primary session traces its requests, and sends a repository open's first ones
		// with the handshake. Lanes only ever get loads.
		ro.PrefetchOpen, ro.Trace, ro.TraceStart = true, tr.w, tr.start
	}
	client, err := remotestore.New(ctx, sess.Stdout, stdin, ro)
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
		client, sess, err := startServe(ctx, conn, cmd, opts, location, tr, false)
		if err != nil {
			return nil, nil, err
		}
		return client, func() error { return waitSession(sess, sessionCloseWait) }, nil
	}
}

// withLanes puts read lanes on the primary client of an ssh:// store (opts.Lanes.Max < 0: none
// will open).
func withLanes(c *remotestore.Client, open remotestore.LaneOpener, opts Options, tr tracer) *remotestore.Laned {
	lo := opts.Lanes
	lo.Open, lo.Trace = open, tr.printf
	return remotestore.NewLaned(c, lo)
}
