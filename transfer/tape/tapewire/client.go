package tapewire

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/snapferry/snapferry/transfer/tape"
	"github.com/snapferry/snapferry/transfer/wire"
)

// Client is a tape.Library served by a remote `snapferry serve --tape`.
type Client struct {
	sess     *wire.Session
	w        io.WriteCloser
	location string
	closeFn  func() error
}

var _ tape.Library = (*Client)(nil)

// New runs the handshake over r (the server's output) and w (its input). onClose runs last in
// Close (closing the SSH session and connection); it may be nil.
func New(ctx context.Context, r io.Reader, w io.WriteCloser, location, program string, onClose func() error) (*Client, error) {
	sess, reply, err := wire.Dial(ctx, r, w, wire.Hello{Program: program, Caps: []string{CapTape}})
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", location, err)
	}
	if !reply.HasCap(CapTape) {
		sess.Close()
		return nil, fmt.Errorf("connect to %s: the server (version %s) does not serve tapes; was it started with --tape?", location, reply.Program)
	}
	return &Client{sess: sess, w: w, location: location, closeFn: onClose}, nil
}

func (c *Client) call(ctx context.Context, op wire.Op, args []byte, out any) error {
	st, err := c.sess.Open(ctx, op, args, false)
	if err != nil {
		return fmt.Errorf("%s on %s: %w", opName(op), c.location, err)
	}
	defer st.Close()
	resp, err := st.Response()
	if err != nil {
		return fmt.Errorf("%s on %s: %w", opName(op), c.location, err)
	}
	if out != nil {
		if err := json.Unmarshal(resp.Body, out); err != nil {
			return fmt.Errorf("%s on %s: bad answer: %w", opName(op), c.location, err)
		}
	}
	return nil
}

// OpenSet starts a save set on the tape host; its stream is uploaded as it is written.
func (c *Client) OpenSet(ctx context.Context, pool string, h tape.SetHeader) (tape.SetStream, error) {
	args, _ := json.Marshal(beginArgs{Pool: pool, Header: h})
	var got tape.SetHeader
	if err := c.call(ctx, OpBegin, args, &got); err != nil {
		return nil, err
	}
	st, err := c.sess.Open(ctx, OpData, []byte(got.Set), true)
	if err != nil {
		c.call(context.Background(), OpAbort, []byte(got.Set), nil)
		return nil, fmt.Errorf("upload save set %s to %s: %w", got.Set, c.location, err)
	}
	return &remoteSet{c: c, ctx: ctx, id: got.Set, st: st}, nil
}

type remoteSet struct {
	c   *Client
	ctx context.Context
	id  string
	st  *wire.Stream
}

func (r *remoteSet) Write(p []byte) (int, error) {
	n, err := r.st.Write(p)
	if err != nil {
		err = fmt.Errorf("save set %s on %s: %w", r.id, r.c.location, err)
	}
	return n, err
}

func (r *remoteSet) Finish(info tape.SetInfo) (tape.SetEntry, error) {
	defer r.st.Close()
	if err := r.st.CloseWrite(); err != nil {
		r.Abort()
		return tape.SetEntry{}, fmt.Errorf("save set %s on %s: %w", r.id, r.c.location, err)
	}
	if _, err := r.st.Response(); err != nil {
		r.Abort()
		return tape.SetEntry{}, fmt.Errorf("save set %s on %s: %w", r.id, r.c.location, err)
	}
	args, _ := json.Marshal(finishArgs{Set: r.id, Info: info})
	var e tape.SetEntry
	err := r.c.call(r.ctx, OpFinish, args, &e)
	return e, err
}

func (r *remoteSet) Abort() {
	r.st.Close()
	r.c.call(context.Background(), OpAbort, []byte(r.id), nil)
}

// ReadSet streams a set from the tape host into w.
func (c *Client) ReadSet(ctx context.Context, ref, source string, w io.Writer) (tape.SetEntry, error) {
	args, _ := json.Marshal(readArgs{Ref: ref, Source: source})
	st, err := c.sess.Open(ctx, OpRead, args, false)
	if err != nil {
		return tape.SetEntry{}, fmt.Errorf("read save set %s from %s: %w", ref, c.location, err)
	}
	defer st.Close()
	resp, err := st.Response()
	if err != nil {
		return tape.SetEntry{}, fmt.Errorf("read save set %s from %s: %w", ref, c.location, err)
	}
	var e tape.SetEntry
	if err := json.Unmarshal(resp.Body, &e); err != nil {
		return e, fmt.Errorf("read save set %s from %s: bad answer: %w", ref, c.location, err)
	}
	if _, err := io.Copy(w, st); err != nil {
		return e, fmt.Errorf("read save set %s from %s: %w", e.ID, c.location, err)
	}
	return e, nil
}

// Catalog fetches the tape host's catalog.
func (c *Client) Catalog(ctx context.Context) (*tape.Catalog, error) {
	var cat tape.Catalog
	if err := c.call(ctx, OpCatalog, nil, &cat); err != nil {
		return nil, err
	}
	return &cat, nil
}

// Close ends the tape session (the server writes the catalog copy and answers), then the link.
func (c *Client) Close() error {
	err := c.call(context.Background(), OpClose, nil, nil)
	c.sess.CloseForOwner()
	if cerr := c.w.Close(); err == nil && cerr != nil && !errors.Is(cerr, io.ErrClosedPipe) {
		err = fmt.Errorf("close link to %s: %w", c.location, cerr)
	}
	if c.closeFn != nil {
		if cerr := c.closeFn(); err == nil {
			err = cerr
		}
	}
	return err
}
