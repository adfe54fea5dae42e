package tapewire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/snapferry/snapferry/transfer/tape"
)

// A drive can be opened by one process only, yet several hosts may back up to it at once. So
// every `serve --tape` is a forwarder: it connects its client to the drive's daemon over a unix
// socket in the tape host's state folder, starting the daemon first when none runs. The daemon
// holds the drive and serves every connection with one shared write session, so the sets of
// all clients are multiplexed onto the same tape file; it ends the session (catalog copy) and
// exits once no client is left. A lock file next to the socket orders starting, connecting and
// quitting, so a client never connects to a daemon that is about to leave.

// ShareOptions configure Forward.
type ShareOptions struct {
	Socket string       // the daemon's unix socket
	Start  func() error // starts the daemon (detached); it must create Socket
}

// lockShare takes the socket's lock file.
func lockShare(socket string) (func(), error) {
	f, err := os.OpenFile(socket+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock tape daemon %s: %w", socket, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock tape daemon %s: %w", socket, err)
	}
	return func() { f.Close() }, nil
}

// Forward connects the client on r and w to the drive's daemon and copies both ways until the
// daemon closes the connection.
func Forward(ctx context.Context, r io.Reader, w io.Writer, o ShareOptions) error {
	conn, err := dialDaemon(o)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	go func() {
		io.Copy(conn, r)
		conn.(*net.UnixConn).CloseWrite()
	}()
	_, err = io.Copy(w, conn)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("forward to the tape daemon: %w", err)
	}
	return nil
}

func dialDaemon(o ShareOptions) (net.Conn, error) {
	unlock, err := lockShare(o.Socket)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if conn, err := net.Dial("unix", o.Socket); err == nil {
		return conn, nil
	}
	os.Remove(o.Socket) // a daemon that died without cleaning up
	if err := o.Start(); err != nil {
		return nil, fmt.Errorf("start the tape daemon: %w", err)
	}
	var last error
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		conn, err := net.Dial("unix", o.Socket)
		if err == nil {
			return conn, nil
		}
		last = err
	}
	return nil, fmt.Errorf("the tape daemon did not come up on %s: %w (see tape/daemon.log in the tape host's state folder)", o.Socket, last)
}

// RunDaemon listens on socket and serves each connection with Serve on one shared library,
// until no connection is left; then it closes the library (writing the catalog copy) and
// returns. Run it under the socket's lock holder's Start: it must be listening before the
// starter gives up.
func RunDaemon(ctx context.Context, socket string, lib tape.Library, o ServeOptions) error {
	ln, err := net.Listen("unix", socket)
	if err != nil {
		return fmt.Errorf("tape daemon: listen on %s: %w", socket, err)
	}
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(false) // removed under the lock below, so a new daemon's socket survives
	// The last client out wakes the accept loop so the drive is released at once.
	shared := &sharedLibrary{Library: lib, idle: func() { ul.SetDeadline(time.Now()) }}
	var wg sync.WaitGroup
	serve := func(c net.Conn) {
		so := o
		so.Library = shared.user()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			if err := Serve(ctx, c, c, so); err != nil && o.Log != nil {
				fmt.Fprintf(o.Log, "tape daemon: client session: %v\n", err)
			}
			so.Library.Close()
		}()
	}
	for {
		// Wait for the first client, then until every client left.
		ul.SetDeadline(time.Now().Add(30 * time.Second))
		c, err := ul.Accept()
		if err == nil {
			serve(c)
			continue
		}
		if ctx.Err() == nil && !isTimeout(err) {
			ln.Close()
			os.Remove(socket)
			return fmt.Errorf("tape daemon: accept on %s: %w", socket, err)
		}
		if shared.busy() && ctx.Err() == nil {
			continue
		}
		unlock, lerr := lockShare(socket)
		if lerr == nil {
			// A client that connected before we took the lock is in the backlog: serve it.
			ul.SetDeadline(time.Now().Add(10 * time.Millisecond))
			if c, err := ul.Accept(); err == nil && ctx.Err() == nil {
				serve(c)
				unlock()
				continue
			}
		}
		ln.Close()
		os.Remove(socket)
		if unlock != nil {
			unlock()
		}
		wg.Wait()
		return shared.Library.Close()
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// sharedLibrary counts the connections using the library; the daemon closes the library itself.
type sharedLibrary struct {
	tape.Library
	idle  func() // called when the last user left
	mu    sync.Mutex
	users int
}

func (s *sharedLibrary) busy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users > 0
}

// user returns the library as one connection sees it: its Close (tape-close, or the end of the
// connection) only counts the connection out, once; the last one out ends the write session.
func (s *sharedLibrary) user() tape.Library {
	s.mu.Lock()
	s.users++
	s.mu.Unlock()
	return &libraryUser{s: s}
}

type libraryUser struct {
	s    *sharedLibrary
	once sync.Once
}

var _ tape.Library = (*libraryUser)(nil)

func (u *libraryUser) OpenSet(ctx context.Context, pool string, h tape.SetHeader) (tape.SetStream, error) {
	return u.s.Library.OpenSet(ctx, pool, h)
}

func (u *libraryUser) ReadSet(ctx context.Context, ref, source string, w io.Writer) (tape.SetEntry, error) {
	return u.s.Library.ReadSet(ctx, ref, source, w)
}

func (u *libraryUser) Catalog(ctx context.Context) (*tape.Catalog, error) {
	return u.s.Library.Catalog(ctx)
}

func (u *libraryUser) Close() error {
	var err error
	u.once.Do(func() {
		u.s.mu.Lock()
		u.s.users--
		last := u.s.users == 0
		u.s.mu.Unlock()
		if last {
			err = u.s.Library.Close()
			u.s.idle()
		}
	})
	return err
}
