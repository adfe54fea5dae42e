package tape

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// SetStream is an open save set: write its stream, then Finish (or Abort).
type SetStream interface {
	io.Writer
	Finish(info SetInfo) (SetEntry, error)
	Abort()
}

// Library is a tape drive with its catalog as a backup or restore sees it: on this host (Local)
// or on a tape host over SSH (transfer/tape/tapewire.Client). Safe for concurrent OpenSet calls
// (each set becomes a stream of the same tape file: multiplexing).
type Library interface {
	// OpenSet starts a save set in pool; the first call starts the write session.
	OpenSet(ctx context.Context, pool string, h SetHeader) (SetStream, error)
	// ReadSet finds a set (id or snapshot prefix, or "latest" narrowed by source) and writes
	// its stream to w.
	ReadSet(ctx context.Context, ref, source string, w io.Writer) (SetEntry, error)
	// Catalog returns the tape host's catalog.
	Catalog(ctx context.Context) (*Catalog, error)
	// Close ends the write session (writing the catalog copy) and releases the drive.
	Close() error
}

// Local is a Library on this host's drive.
type Local struct {
	Drive *Drive
	// Ctx bounds the write session (tape changes happen inside it): set it to the life of the
	// program, not of one request; nil is context.Background().
	Ctx context.Context

	mu   sync.Mutex
	sess *Session
	pool string
}

var _ Library = (*Local)(nil)

func (l *Local) OpenSet(ctx context.Context, pool string, h SetHeader) (SetStream, error) {
	if pool == "" {
		pool = "default"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sess == nil {
		sctx := l.Ctx
		if sctx == nil {
			sctx = context.Background()
		}
		s, err := l.Drive.Begin(sctx, pool)
		if err != nil {
			return nil, err
		}
		l.sess, l.pool = s, pool
	}
	if pool != l.pool {
		return nil, fmt.Errorf("open save set in pool %q: this session writes pool %q; one session writes one pool", pool, l.pool)
	}
	// Under the lock so a concurrent Close cannot end the session between the two steps; a
	// header record is quick (unless the volume fills and the changer runs).
	w, err := l.sess.BeginSet(h)
	if err != nil {
		return nil, err
	}
	return w, nil
}

func (l *Local) ReadSet(ctx context.Context, ref, source string, w io.Writer) (SetEntry, error) {
	cat, err := l.Drive.Catalog.Load()
	if err != nil {
		return SetEntry{}, err
	}
	e, err := cat.Find(ref, source)
	if err != nil {
		return SetEntry{}, err
	}
	return *e, l.Drive.ReadSet(ctx, e, w)
}

func (l *Local) Catalog(ctx context.Context) (*Catalog, error) { return l.Drive.Catalog.Load() }

func (l *Local) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sess == nil {
		return nil
	}
	err := l.sess.Close()
	l.sess = nil
	return err
}
