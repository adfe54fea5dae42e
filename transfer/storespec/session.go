package storespec

import (
	"context"
	"fmt"
	"time"

	"github.com/snapferry/snapferry/transfer/wire"
)

// OpenSessionServer starts `snapferry serve` at an ssh:// spec, as Open does, and hands out its
// wire session itself, for protocols that talk to serve directly (replicas) instead of through a
// repository store, with what the server announced (its absolute root folder, its
// capabilities). The returned func ends the session and the SSH connection.
func OpenSessionServer(ctx context.Context, spec string, opts Options) (*wire.Session, wire.HelloReply, func() error, error) {
	s, err := Parse(spec)
	if err != nil {
		return nil, wire.HelloReply{}, nil, err
	}
	if s.Scheme != SSH {
		return nil, wire.HelloReply{}, nil, fmt.Errorf("%w %q: a serve session needs ssh://[user@]host[:port]/path (the far side runs snapferry serve)", ErrBadSpec, spec)
	}
	conn, err := Dial(ctx, s, opts)
	if err != nil {
		return nil, wire.HelloReply{}, nil, err
	}
	client, ssh, _, err := openServe(ctx, conn, s, opts, tracer{w: opts.Trace, start: time.Now()})
	if err != nil {
		conn.Close()
		return nil, wire.HelloReply{}, nil, err
	}
	l := &linked{Backend: client, conn: conn, closeSession: func() error { return waitSession(ssh, sessionCloseWait) }}
	return client.Session(), client.Server(), l.Close, nil
}
