package storespec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/transfer/sshconn"
	"github.com/snapferry/snapferry/transfer/wire"
)

// linked is a remote Backend together with the SSH connection it runs on. It owns the
// connection (Close closes it) and adds the keepalive's verdict to errors, so a dead link reads
// as "no answer from the host for 15s" instead of a bare "connection lost" or EOF.
type linked struct {
	store.Backend
	conn         *sshconn.Client
	closeSession func() error
	tr           tracer
	wire         *wire.Session // ssh:// only: its request counts close the trace
}

var (
	_ store.Backend       = (*linked)(nil)
	_ store.SpaceReporter = (*linked)(nil)
	_ store.StreamSaver   = (*linked)(nil)
	_ store.TempCleaner   = (*linked)(nil)
)

// Unwrap returns the Backend on the connection: for ssh:// the wire client (*remotestore.Client,
// whose Session carries the replica protocol too), possibly inside the metadata cache and the
// read lanes (*remotestore.Laned embeds the client); a *sftpstore.Store for sftp://.
func (l *linked) Unwrap() store.Backend { return l.Backend }

// Conn is the SSH connection under the store.
func (l *linked) Conn() *sshconn.Client { return l.conn }

func (l *linked) Save(ctx context.Context, h store.Handle, rd io.Reader) error {
	return l.conn.Explain(l.Backend.Save(ctx, h, rd))
}

func (l *linked) Load(ctx context.Context, h store.Handle, offset, length int64) (io.ReadCloser, error) {
	rc, err := l.Backend.Load(ctx, h, offset, length)
	return rc, l.conn.Explain(err)
}

func (l *linked) Stat(ctx context.Context, h store.Handle) (store.FileInfo, error) {
	fi, err := l.Backend.Stat(ctx, h)
	return fi, l.conn.Explain(err)
}

func (l *linked) List(ctx context.Context, k store.Kind, fn func(store.FileInfo) error) error {
	return l.conn.Explain(l.Backend.List(ctx, k, fn))
}

func (l *linked) Remove(ctx context.Context, h store.Handle) error {
	return l.conn.Explain(l.Backend.Remove(ctx, h))
}

func (l *linked) Create(ctx context.Context) error {
	return l.conn.Explain(l.Backend.Create(ctx))
}

// FreeSpace asks the backend when it can tell.
func (l *linked) FreeSpace(ctx context.Context) (int64, error) {
	sr, ok := l.Backend.(store.SpaceReporter)
	if !ok {
		return 0, fmt.Errorf("free space of %s: not reported by this store", l.Location())
	}
	n, err := sr.FreeSpace(ctx)
	return n, l.conn.Explain(err)
}

// CleanTemp passes to the backend when it can tell temp files (ssh://); elsewhere there is
// nothing to report.
func (l *linked) CleanTemp(ctx context.Context, before time.Time) (store.TempReport, error) {
	tc, ok := l.Backend.(store.TempCleaner)
	if !ok {
		return store.TempReport{}, nil
	}
	rep, err := tc.CleanTemp(ctx, before)
	return rep, l.conn.Explain(err)
}

// SaveStream streams when the backend can (ssh://); the sftp store cannot, and the caller then
// spools and uses Save.
func (l *linked) SaveStream(ctx context.Context, k store.Kind) (store.Pending, error) {
	p, err := store.StartStream(ctx, l.Backend, k)
	if err != nil {
		return nil, l.conn.Explain(err)
	}
	return &linkedPending{Pending: p, conn: l.conn}, nil
}

// linkedPending adds the keepalive's verdict to the errors of a streamed save: the link most
// often dies during the long part, the writes.
type linkedPending struct {
	store.Pending
	conn *sshconn.Client
}

func (p *linkedPending) Write(b []byte) (int, error) {
	n, err := p.Pending.Write(b)
	return n, p.conn.Explain(err)
}

func (p *linkedPending) Commit(ctx context.Context, h store.Handle) error {
	return p.conn.Explain(p.Pending.Commit(ctx, h))
}

// Close closes the backend, then the session it ran in, then the connection.
func (l *linked) Close() error {
	if l.wire != nil {
		st := l.wire.Stats()
		l.tr.printf("closing the store after %d requests, %d of them serial round trips", st.Requests, st.Serial)
	} else {
		l.tr.printf("closing the store")
	}
	err := l.Backend.Close()
	if serr := l.closeSession(); err == nil {
		err = serr
	}
	l.tr.printf("far side ended")
	if cerr := l.conn.Close(); err == nil && cerr != nil && !errors.Is(cerr, io.EOF) && l.conn.Err() == nil {
		err = fmt.Errorf("close connection of %s: %w", l.Location(), cerr)
	}
	return err
}
