package nbd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Options choose what a client negotiates.
type Options struct {
	// Export is the export name (QEMU's backup job names them after the disk target, "vda").
	Export string
	// MetaContexts are the metadata contexts to select for block status ("base:allocation",
	// DirtyBitmapContext(name)). A context the server does not know is left out: Client.Context
	// tells which were selected.
	MetaContexts []string
}

// Client is one NBD connection in transmission phase. Its methods may be called from several
// goroutines: requests are pipelined (up to Window in flight, see pipeline.go) and their replies,
// which the server may send in any order with chunks of different requests interleaved, are
// matched to them by handle.
type Client struct {
	conn     net.Conn
	info     exportInfo
	contexts map[string]uint32
	p        pipe
}

// Dial connects to an NBD server ("tcp", "127.0.0.1:10809" or "unix", "/path/sock") and
// negotiates the export with NBD_OPT_GO, structured replies and the asked metadata contexts.
func Dial(ctx context.Context, network, addr string, o Options) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("nbd: connect to %s: %w", addr, err)
	}
	c, err := NewClient(ctx, conn, o)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// NewClient runs the handshake on conn; on error the caller closes conn.
func NewClient(ctx context.Context, conn net.Conn, o Options) (*Client, error) {
	c := &Client{conn: conn, contexts: map[string]uint32{}}
	stop := c.watch(ctx)
	defer stop()
	if err := c.handshake(o); err != nil {
		return nil, fmt.Errorf("nbd: handshake with %s for export %q: %w", conn.RemoteAddr(), o.Export, err)
	}
	ids := make([]uint32, 0, len(c.contexts))
	for _, id := range c.contexts {
		ids = append(ids, id)
	}
	c.p.start(conn, ids)
	return c, nil
}

// watch makes I/O on the connection fail at once when ctx ends; stop undoes it.
func (c *Client) watch(ctx context.Context) (stop func()) {
	if ctx.Done() == nil {
		return func() {}
	}
	unhook := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Unix(1, 0)) })
	return func() {
		if !unhook() {
			// The deadline was set: clear it so the next request works (its own ctx decides).
			_ = c.conn.SetDeadline(time.Time{})
		}
	}
}

// Size is the export's size in bytes.
func (c *Client) Size() int64 { return int64(c.info.size) }

// ReadOnly reports whether the server exports read-only.
func (c *Client) ReadOnly() bool { return c.info.flags&TransReadOnly != 0 }

// Context tells whether the server selected a metadata context.
func (c *Client) Context(name string) bool { _, ok := c.contexts[name]; return ok }

// Close says goodbye (NBD_CMD_DISC) and closes the connection. Requests still in flight fail;
// once Close returns nothing writes into their buffers any more.
func (c *Client) Close() error { return c.p.close() }

func (c *Client) handshake(o Options) error {
	var b [18]byte
	if _, err := io.ReadFull(c.conn, b[:]); err != nil {
		return fmt.Errorf("read greeting: %w", err)
	}
	if binary.BigEndian.Uint64(b[:]) != magicNBD || binary.BigEndian.Uint64(b[8:]) != magicOpt {
		return errors.New("not a newstyle NBD server (bad greeting magic)")
	}
	sflags := binary.BigEndian.Uint16(b[16:])
	if sflags&flagFixedNewstyle == 0 {
		return errors.New("server does not speak fixed newstyle negotiation")
	}
	cflags := uint32(1) // NBD_FLAG_C_FIXED_NEWSTYLE
	if sflags&flagNoZeroes != 0 {
		cflags |= 2
	}
	if err := binary.Write(c.conn, binary.BigEndian, cflags); err != nil {
		return err
	}
	// Structured replies are needed for block status; a server without them (simple replies
	// only) is still read, and Context then reports no metadata context.
	structured := true
	if err := c.option(optStructured, nil, func(typ uint32, p []byte) error { return nil }); err != nil {
		var oe *optionError
		if !errors.As(err, &oe) || oe.typ != repErrUnsup {
			return fmt.Errorf("structured replies: %w", err)
		}
		structured = false
	}
	if len(o.MetaContexts) > 0 && structured {
		if err := c.option(optSetMetaContext, metaContextRequest(o.Export, o.MetaContexts), func(typ uint32, p []byte) error {
			if typ != repMetaContext {
				return nil
			}
			id, name, err := parseMetaContext(p)
			if err == nil {
				c.contexts[name] = id
			}
			return err
		}); err != nil {
			return fmt.Errorf("select metadata contexts %v: %w", o.MetaContexts, err)
		}
	}
	goReq := make([]byte, 4+len(o.Export)+2+2)
	binary.BigEndian.PutUint32(goReq, uint32(len(o.Export)))
	copy(goReq[4:], o.Export)
	binary.BigEndian.PutUint16(goReq[4+len(o.Export):], 1)
	binary.BigEndian.PutUint16(goReq[6+len(o.Export):], infoBlockSize)
	gotExport := false
	if err := c.option(optGo, goReq, func(typ uint32, p []byte) error {
		if typ != repInfo {
			return nil
		}
		if len(p) >= 2 && binary.BigEndian.Uint16(p) == infoExport {
			gotExport = true
		}
		return parseInfo(p, &c.info)
	}); err != nil {
		return fmt.Errorf("NBD_OPT_GO: %w", err)
	}
	if !gotExport {
		return errors.New("server finished NBD_OPT_GO without the export's size")
	}
	return nil
}

// metaContextRequest is the payload of NBD_OPT_SET_META_CONTEXT.
func metaContextRequest(export string, queries []string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(export)))
	b = append(b, export...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(queries)))
	for _, q := range queries {
		b = binary.BigEndian.AppendUint32(b, uint32(len(q)))
		b = append(b, q...)
	}
	return b
}

// option sends one option and reads its replies up to the final ACK, handing each non-error
// reply to fn. An error reply ends it with an error naming the reply.
func (c *Client) option(opt uint32, data []byte, fn func(typ uint32, payload []byte) error) error {
	req := binary.BigEndian.AppendUint64(nil, magicOpt)
	req = binary.BigEndian.AppendUint32(req, opt)
	req = binary.BigEndian.AppendUint32(req, uint32(len(data)))
	req = append(req, data...)
	if _, err := c.conn.Write(req); err != nil {
		return err
	}
	var hb [20]byte
	for {
		if _, err := io.ReadFull(c.conn, hb[:]); err != nil {
			return fmt.Errorf("read option reply: %w", err)
		}
		h, err := parseOptReply(hb[:])
		if err != nil {
			return err
		}
		if h.opt != opt {
			return fmt.Errorf("reply for option %d while waiting for %d", h.opt, opt)
		}
		p := make([]byte, h.length)
		if _, err := io.ReadFull(c.conn, p); err != nil {
			return fmt.Errorf("read option reply: %w", err)
		}
		switch {
		case h.typ == repAck:
			return nil
		case h.typ&repErrBit != 0:
			return optError(h.typ, p)
		}
		if err := fn(h.typ, p); err != nil {
			return err
		}
	}
}

// optionError is an error reply to an option.
type optionError struct {
	typ uint32
	msg string
}

func (e *optionError) Error() string { return e.msg }

func optError(typ uint32, p []byte) error {
	what := fmt.Sprintf("error %#x", typ)
	switch typ {
	case repErrUnsup:
		what = "unsupported"
	case repErrPolicy:
		what = "refused by policy"
	case repErrInvalid:
		what = "invalid"
	case repErrUnknown:
		what = "unknown export"
	}
	msg := "server says " + what
	if len(p) > 0 && len(p) <= maxStringLen {
		msg += ": " + string(p)
	}
	return &optionError{typ: typ, msg: msg}
}
