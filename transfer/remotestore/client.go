package remotestore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/transfer/wire"
)

// Options configure a Client.
type Options struct {
	// Location names the store in messages, e.g. "ssh://backup@nas/srv/repo". Default: the
	// server's root as it announced it.
	Location string
	// Program is this program's version, announced in the handshake.
	Program string
	// PrefetchOpen sends the requests a repository open starts with (load the config, list the
	// index files) right behind the handshake, so their answers come back with the server's:
	// one round trip less (see prefetch.go).
	PrefetchOpen bool
	// Trace, when set, receives the session's trace from the first request on
	// (wire.Session.SetTrace, with TraceStart as time zero).
	Trace      io.Writer
	TraceStart time.Time
}

// LoadWindow is how many bytes of a large Load may be on their way at once (the session's window
// and a grant ahead; see wire.Stream.GrantAhead). With the default 1 MiB window a restore's four
// loads in flight moved at most 4 MiB per round trip: ~80 MB/s on a link with 50 ms round trips.
// At 4 MiB each the same loads take ~320 MB/s, and a reader slower than the link keeps at most
// 4 MiB per load buffered.
const LoadWindow = 4 << 20

// Client is a store.Backend served by a remote `snapferry serve`.
type Client struct {
	sess     *wire.Session
	w        io.WriteCloser
	server   wire.HelloReply
	location string

	pre prefetched // requests sent with the handshake, waiting for their caller
}

var (
	_ store.Backend       = (*Client)(nil)
	_ store.SpaceReporter = (*Client)(nil)
)

// New runs the handshake over r (the server's output) and w (its input) and returns a client.
// ctx bounds the handshake. Close closes w, which ends the server; the caller still owns r and
// closes it after Close (closing an SSH session does both).
func New(ctx context.Context, r io.Reader, w io.WriteCloser, opts Options) (*Client, error) {
	where := opts.Location
	if where == "" {
		where = "remote store"
	}
	sess := wire.DialEarly(r, w, wire.Hello{Program: opts.Program, Caps: []string{wire.CapStore}}, opts.Trace, opts.TraceStart)
	c := &Client{sess: sess, w: w}
	if opts.PrefetchOpen {
		c.prefetchOpen(ctx)
	}
	reply, err := sess.Handshake(ctx)
	if err != nil {
		sess.Close()
		return nil, fmt.Errorf("connect to %s: %w", where, err)
	}
	if !reply.HasCap(wire.CapStore) {
		sess.Close()
		return nil, fmt.Errorf("connect to %s: server (version %s) does not serve repository files", opts.Location, reply.Program)
	}
	c.server, c.location = reply, opts.Location
	if c.location == "" {
		c.location = "serve:" + reply.Root
	}
	return c, nil
}

// Server returns what the server announced in the handshake (version, root, append-only).
func (c *Client) Server() wire.HelloReply { return c.server }

// Session is the wire session, for other protocols over the same link (replicas).
func (c *Client) Session() *wire.Session { return c.sess }

// Location names the store.
func (c *Client) Location() string { return c.location }

// Close ends the session and closes the writer, which ends the server.
func (c *Client) Close() error {
	c.sess.CloseForOwner()
	if err := c.w.Close(); err != nil && !errors.Is(err, io.ErrClosedPipe) {
		return fmt.Errorf("close link to %s: %w", c.location, err)
	}
	return nil
}

// call runs a request without bodies and returns the result body.
func (c *Client) call(ctx context.Context, op wire.Op, args []byte) ([]byte, error) {
	st, err := c.open(ctx, op, args, false)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	resp, err := st.Response()
	return resp.Body, err
}

// wrap names the operation, the object (empty for whole-store ops) and the store.
func (c *Client) wrap(op string, what any, err error) error {
	if what == nil {
		return fmt.Errorf("%s on %s: %w", op, c.location, err)
	}
	return fmt.Errorf("%s %v on %s: %w", op, what, c.location, err)
}

// Save streams rd to the server, which writes it atomically.
func (c *Client) Save(ctx context.Context, h store.Handle, rd io.Reader) error {
	if err := ctx.Err(); err != nil {
		return c.wrap("save", h, err)
	}
	st, err := c.open(ctx, wire.OpSave, wire.EncodeHandle(h), true)
	if err != nil {
		return c.wrap("save", h, err)
	}
	defer st.Close()
	if err := upload(ctx, st, rd); err != nil {
		return c.wrap("save", h, err)
	}
	if _, err := st.Response(); err != nil {
		return c.wrap("save", h, err)
	}
	return nil
}

// upload copies rd into the stream and ends it. A failing source or context ends the upload
// with an error, so the server drops its temp file instead of publishing a short file.
func upload(ctx context.Context, st *wire.Stream, rd io.Reader) error {
	buf := make([]byte, wire.ChunkSize)
	for {
		if err := ctx.Err(); err != nil {
			st.CloseWithError(err)
			return err
		}
		n, rerr := rd.Read(buf)
		if n > 0 {
			if _, err := st.Write(buf[:n]); err != nil {
				if _, rerr := st.Response(); rerr != nil {
					return rerr // the server's reason beats "server answered early"
				}
				return err
			}
		}
		if rerr == io.EOF {
			return st.CloseWrite()
		}
		if rerr != nil {
			st.CloseWithError(rerr)
			return fmt.Errorf("read source: %w", rerr)
		}
	}
}

// Load streams the file from offset; length <= 0 reads to the end.
func (c *Client) Load(ctx context.Context, h store.Handle, offset, length int64) (io.ReadCloser, error) {
	if offset < 0 {
		return nil, c.wrap("load", h, fmt.Errorf("negative offset %d", offset))
	}
	st, err := c.open(ctx, wire.OpLoad, wire.EncodeLoadArgs(wire.LoadArgs{Handle: h, Offset: offset, Length: length}), false)
	if err != nil {
		return nil, c.wrap("load", h, err)
	}
	// A large range (a restore's run of blocks) may arrive faster than one window per round trip.
	want := int64(LoadWindow) // length <= 0: the whole file, large as a rule (a pack)
	if length > 0 {
		want = min(length, LoadWindow)
	}
	if extra := want - int64(c.server.Window); extra > 0 {
		if err := st.GrantAhead(int(extra)); err != nil {
			st.Close()
			return nil, c.wrap("load", h, err)
		}
	}
	if _, err := st.Response(); err != nil {
		st.Close()
		return nil, c.wrap("load", h, err)
	}
	return &body{st: st, what: func(err error) error { return c.wrap("load", h, err) }}, nil
}

// body is a streamed download. Closing it early cancels the rest on the server.
type body struct {
	st   *wire.Stream
	what func(error) error
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.st.Read(p)
	if err != nil && err != io.EOF {
		err = b.what(err)
	}
	return n, err
}

func (b *body) Close() error { return b.st.Close() }

// Stat returns the file's size and modification time.
func (c *Client) Stat(ctx context.Context, h store.Handle) (store.FileInfo, error) {
	p, err := c.call(ctx, wire.OpStat, wire.EncodeHandle(h))
	if err != nil {
		return store.FileInfo{}, c.wrap("stat", h, err)
	}
	fi, err := wire.DecodeFileInfo(p)
	if err != nil {
		return store.FileInfo{}, c.wrap("stat", h, err)
	}
	return fi, nil
}

// List calls fn for each file of kind k as the entries stream in.
func (c *Client) List(ctx context.Context, k store.Kind, fn func(store.FileInfo) error) error {
	st, err := c.open(ctx, wire.OpList, wire.EncodeKind(k), false)
	if err != nil {
		return c.wrap("list", k, err)
	}
	defer st.Close()
	br := bufio.NewReaderSize(st, 64<<10)
	for {
		fi, err := wire.ReadFileInfo(br)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return c.wrap("list", k, err)
		}
		if err := fn(fi); err != nil {
			return err
		}
	}
}

// Remove deletes a file on the server.
func (c *Client) Remove(ctx context.Context, h store.Handle) error {
	if _, err := c.call(ctx, wire.OpRemove, wire.EncodeHandle(h)); err != nil {
		return c.wrap("remove", h, err)
	}
	return nil
}

// Create makes the repository folders on the server.
func (c *Client) Create(ctx context.Context) error {
	if _, err := c.call(ctx, wire.OpCreate, nil); err != nil {
		return c.wrap("create repository", nil, err)
	}
	return nil
}

// CleanTemp implements store.TempCleaner over the link. A server without the capability (an
// older snapferry) has nothing to report.
func (c *Client) CleanTemp(ctx context.Context, before time.Time) (store.TempReport, error) {
	if !c.server.HasCap(wire.CapCleanTemp) {
		return store.TempReport{}, nil
	}
	var ns uint64
	if !before.IsZero() {
		ns = uint64(max(before.UnixNano(), 1))
	}
	p, err := c.call(ctx, wire.OpCleanTemp, wire.EncodeUint(ns))
	if err != nil {
		return store.TempReport{}, c.wrap("clean temp files", nil, err)
	}
	rep, err := wire.DecodeTempReport(p)
	if err != nil {
		return rep, c.wrap("clean temp files", nil, err)
	}
	return rep, nil
}

// FreeSpace reports the bytes free below the server's root.
func (c *Client) FreeSpace(ctx context.Context) (int64, error) {
	p, err := c.call(ctx, wire.OpFreeSpace, nil)
	if err != nil {
		return 0, c.wrap("free space", nil, err)
	}
	n, err := wire.DecodeUint(p)
	if err != nil {
		return 0, c.wrap("free space", nil, err)
	}
	return int64(min(n, 1<<62)), nil
}
