package nbd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
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
// goroutines; requests go one at a time.
type Client struct {
	mu       sync.Mutex
	conn     net.Conn
	info     exportInfo
	contexts map[string]uint32
	cookie   uint64
	hdr      [28]byte
	// broken is the first error that left the connection out of step (a short read, a
	// protocol error, a cancelled request): every later request fails with it.
	broken error
}

// fail records err as breaking the connection unless the server only reported an error for
// the request (the stream is still in step then), and returns it.
func (c *Client) fail(err error) error {
	var se *ServerError
	if !errors.As(err, &se) && c.broken == nil {
		c.broken = err
	}
	return err
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

// Close says goodbye (NBD_CMD_DISC) and closes the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.conn.SetDeadline(time.Now().Add(2 * time.Second))
	_ = c.send(cmdDisc, 0, 0, 0)
	return c.conn.Close()
}

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

// send writes one request header (no payload).
func (c *Client) send(cmd uint16, flags uint16, off uint64, n uint32) error {
	c.cookie++
	b := c.hdr[:]
	binary.BigEndian.PutUint32(b, magicRequest)
	binary.BigEndian.PutUint16(b[4:], flags)
	binary.BigEndian.PutUint16(b[6:], cmd)
	binary.BigEndian.PutUint64(b[8:], c.cookie)
	binary.BigEndian.PutUint64(b[16:], off)
	binary.BigEndian.PutUint32(b[24:], n)
	_, err := c.conn.Write(b)
	return err
}

// ReadAt reads len(p) bytes at off (io.ReaderAt), in requests of at most MaxRequest bytes.
// Holes the server reports read as zeros.
func (c *Client) ReadAt(p []byte, off int64) (int, error) {
	return c.ReadAtContext(context.Background(), p, off)
}

// ReadAtContext is ReadAt that gives up when ctx ends.
func (c *Client) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("nbd: read at negative offset %d", off)
	}
	done := 0
	for done < len(p) {
		if off+int64(done) >= c.Size() {
			return done, io.EOF
		}
		n := min(len(p)-done, MaxRequest, int(c.Size()-off-int64(done)))
		if err := c.read(ctx, p[done:done+n], uint64(off)+uint64(done)); err != nil {
			return done, err
		}
		done += n
	}
	return done, nil
}

func (c *Client) read(ctx context.Context, p []byte, off uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	stop := c.watch(ctx)
	defer stop()
	if c.broken != nil {
		return fmt.Errorf("nbd: connection unusable after an earlier error: %w", c.broken)
	}
	if err := c.send(cmdRead, 0, off, uint32(len(p))); err != nil {
		c.fail(err)
		return fmt.Errorf("nbd: send read: %w", err)
	}
	var covered uint64
	err := c.replies(func(h replyHeader, payload []byte) error {
		switch h.typ {
		case chunkOffsetData:
			o, data, err := parseOffsetData(payload)
			if err != nil {
				return err
			}
			if o < off || o-off+uint64(len(data)) > uint64(len(p)) {
				return fmt.Errorf("read reply data at %d+%d outside the request %d+%d", o, len(data), off, len(p))
			}
			copy(p[o-off:], data)
			covered += uint64(len(data))
		case chunkOffsetHole:
			o, n, err := parseOffsetHole(payload)
			if err != nil {
				return err
			}
			if o < off || o-off+uint64(n) > uint64(len(p)) {
				return fmt.Errorf("read reply hole at %d+%d outside the request %d+%d", o, n, off, len(p))
			}
			clear(p[o-off : o-off+uint64(n)])
			covered += uint64(n)
		case chunkNone:
		default:
			return fmt.Errorf("unexpected reply chunk type %d to a read", h.typ)
		}
		return nil
	}, p)
	if errors.Is(err, errSimpleDone) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("nbd: read %d bytes at %d: %w", len(p), off, c.fail(err))
	}
	if covered != uint64(len(p)) {
		return fmt.Errorf("nbd: read %d bytes at %d: the server's chunks covered %d", len(p), off, covered)
	}
	return nil
}

// replies reads the replies to the request just sent, up to the final one, handing each
// structured chunk's payload to fn. A simple reply to a read fills readBuf and ends it.
func (c *Client) replies(fn func(h replyHeader, payload []byte) error, readBuf []byte) error {
	var hb [20]byte
	var payload []byte
	var firstErr error
	for {
		if _, err := io.ReadFull(c.conn, hb[:4]); err != nil {
			return err
		}
		n := replyHeaderLen(binary.BigEndian.Uint32(hb[:4]))
		if n == 0 {
			return fmt.Errorf("reply magic %#x is neither simple nor structured", binary.BigEndian.Uint32(hb[:4]))
		}
		if _, err := io.ReadFull(c.conn, hb[4:n]); err != nil {
			return err
		}
		h, err := parseReplyHeader(hb[:n])
		if err != nil {
			return err
		}
		if h.cookie != c.cookie {
			return fmt.Errorf("reply for request %d while waiting for %d", h.cookie, c.cookie)
		}
		if !h.structured {
			if h.errno != 0 {
				return &ServerError{Errno: h.errno}
			}
			if readBuf != nil {
				if _, err := io.ReadFull(c.conn, readBuf); err != nil {
					return err
				}
				if fn != nil {
					// Tell read that the buffer is full.
					return errSimpleDone
				}
			}
			return nil
		}
		if cap(payload) < int(h.length) {
			payload = make([]byte, h.length)
		}
		payload = payload[:h.length]
		if _, err := io.ReadFull(c.conn, payload); err != nil {
			return err
		}
		if h.typ&chunkErrBit != 0 {
			if firstErr == nil {
				firstErr = parseErrorChunk(h.typ, payload)
			}
		} else if firstErr == nil {
			firstErr = fn(h, payload)
		}
		if h.flags&replyFlagDone != 0 {
			return firstErr
		}
	}
}

var errSimpleDone = errors.New("simple reply")

// BlockStatus asks for the extents of context (a name selected at Dial) in [off, off+length)
// and returns them in order, clipped to the range. The server may answer for less than the
// whole range; the caller asks again from the end of the last extent.
func (c *Client) BlockStatus(ctx context.Context, cname string, off, length uint64) ([]Extent, error) {
	id, ok := c.contexts[cname]
	if !ok {
		return nil, fmt.Errorf("nbd: block status: metadata context %q was not selected by the server", cname)
	}
	length = min(length, 1<<31)
	c.mu.Lock()
	defer c.mu.Unlock()
	stop := c.watch(ctx)
	defer stop()
	if c.broken != nil {
		return nil, fmt.Errorf("nbd: connection unusable after an earlier error: %w", c.broken)
	}
	if err := c.send(cmdBlockStatus, 0, off, uint32(length)); err != nil {
		c.fail(err)
		return nil, fmt.Errorf("nbd: send block status: %w", err)
	}
	var out []Extent
	err := c.replies(func(h replyHeader, payload []byte) error {
		switch h.typ {
		case chunkBlockStatus:
			got, ext, err := parseBlockStatus(payload, off)
			if err != nil {
				return err
			}
			if got == id {
				out = ext
			}
		case chunkNone:
		default:
			return fmt.Errorf("unexpected reply chunk type %d to block status", h.typ)
		}
		return nil
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("nbd: block status of %s at %d+%d: %w", cname, off, length, c.fail(err))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("nbd: block status of %s at %d+%d: no extents in the reply", cname, off, length)
	}
	end := off + length
	for i := range out {
		if out[i].Offset+out[i].Length >= end {
			out[i].Length = end - out[i].Offset
			out = out[:i+1]
			break
		}
	}
	return out, nil
}
