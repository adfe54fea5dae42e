package nbd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"
)

// Window is how many requests a Client keeps in flight at most. A reader of 1 MiB blocks then
// has 16 MiB asked for, which keeps QEMU's NBD server busy across the round trips that made one
// request at a time slow, while what the server may send us stays bounded.
const Window = 16

// Limits on one request's reply, so a hostile server cannot make the client loop or allocate:
// read data goes straight into the caller's buffer and may cover each byte once; block status
// answers once per selected context; error chunks are few.
const (
	maxStatusChunk  = 4 + 8*(1<<19) // 512Ki extents; QEMU sends at most 128Ki per chunk
	maxErrorChunk   = 6 + maxStringLen + 8
	maxErrorChunks  = 16
	errClosedReason = "the client closed the connection"
)

// pipe is the transmission phase of a client connection. Requests are written one header at a
// time under wmu and registered by handle; a single goroutine (recv) reads every reply and
// completes the request it names, writing read data straight into that request's buffer.
// Anything out of protocol breaks the connection: every request in flight fails with the
// reason, and so does every later one.
type pipe struct {
	conn  net.Conn
	ctxID []uint32      // the metadata contexts the server selected
	slots chan struct{} // one token per request in flight

	wmu sync.Mutex
	hdr [28]byte

	mu      sync.Mutex
	cookie  uint64
	pending map[uint64]*call
	broken  error
	done    chan struct{} // closed when recv has returned: no buffer is written any more
}

// call is one request in flight and what its replies brought so far.
type call struct {
	cmd     uint16
	off     uint64
	length  uint32
	buf     []byte // read: the destination, len(buf) == length
	covered uint64 // read: bytes the chunks filled
	want    uint32 // block status: the context whose extents the caller wants
	seen    []uint32
	ext     []Extent
	errs    int
	err     error // the first error the server reported for it (the stream is still in step)
	done    chan struct{}
}

func (p *pipe) start(conn net.Conn, ctxIDs []uint32) {
	p.conn, p.ctxID = conn, ctxIDs
	p.slots = make(chan struct{}, Window)
	p.pending = map[uint64]*call{}
	p.done = make(chan struct{})
	go p.recv()
}

// errBroken wraps the reason the connection broke.
func (p *pipe) errBroken() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Errorf("nbd: connection unusable: %w", p.broken)
}

// shutdown breaks the connection for reason (the first reason is kept) and closes it, which
// ends recv; recv then fails the requests in flight.
func (p *pipe) shutdown(reason error) {
	p.mu.Lock()
	if p.broken == nil {
		p.broken = reason
	}
	p.mu.Unlock()
	_ = p.conn.Close()
}

// send registers a request and writes its header. buf is the destination of a read; want the
// context id of a block status. The request holds a window slot until it completes.
func (p *pipe) send(ctx context.Context, cmd uint16, off uint64, length uint32, buf []byte, want uint32) (*call, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	case <-p.done:
		return nil, p.errBroken()
	}
	c := &call{cmd: cmd, off: off, length: length, buf: buf, want: want, done: make(chan struct{})}
	p.mu.Lock()
	if p.broken != nil {
		p.mu.Unlock()
		<-p.slots
		return nil, p.errBroken()
	}
	p.cookie++
	cookie := p.cookie
	p.pending[cookie] = c
	p.mu.Unlock()

	p.wmu.Lock()
	// A write blocked on a server that reads nothing ends with ctx: the connection is closed.
	stop := context.AfterFunc(ctx, func() { p.shutdown(fmt.Errorf("request cancelled: %w", context.Cause(ctx))) })
	err := p.writeHeader(cmd, cookie, off, length)
	stop()
	p.wmu.Unlock()
	if err != nil {
		// recv sees the closed connection and fails the call with the reason.
		p.shutdown(fmt.Errorf("send request: %w", err))
	}
	return c, nil
}

// writeHeader writes one request header; the caller holds wmu.
func (p *pipe) writeHeader(cmd uint16, cookie, off uint64, length uint32) error {
	b := p.hdr[:]
	binary.BigEndian.PutUint32(b, magicRequest)
	binary.BigEndian.PutUint16(b[4:], 0)
	binary.BigEndian.PutUint16(b[6:], cmd)
	binary.BigEndian.PutUint64(b[8:], cookie)
	binary.BigEndian.PutUint64(b[16:], off)
	binary.BigEndian.PutUint32(b[24:], length)
	_, err := p.conn.Write(b)
	return err
}

// wait blocks until c completes or ctx ends. A request cannot be taken back from the server,
// and its reply would be written into a buffer the caller reuses: so when ctx ends first, the
// connection is closed and wait returns only after recv has stopped.
func (p *pipe) wait(ctx context.Context, c *call) error {
	select {
	case <-c.done:
		return c.err
	default:
	}
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		p.shutdown(fmt.Errorf("request cancelled: %w", context.Cause(ctx)))
		<-p.done
		<-c.done
		return context.Cause(ctx)
	}
}

// close says goodbye (NBD_CMD_DISC), closes the connection and waits for recv to end.
func (p *pipe) close() error {
	// A request stuck in a write to a server that reads nothing gives up within the deadline.
	_ = p.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
	p.wmu.Lock()
	p.mu.Lock()
	ok := p.broken == nil
	p.cookie++
	cookie := p.cookie
	p.mu.Unlock()
	if ok {
		_ = p.writeHeader(cmdDisc, cookie, 0, 0)
	}
	p.wmu.Unlock()
	p.shutdown(errors.New(errClosedReason))
	<-p.done
	return nil
}

// recv reads replies until the connection breaks, then fails every request still in flight.
func (p *pipe) recv() {
	defer close(p.done)
	var hb [20]byte
	var scratch []byte
	var err error
	for err == nil {
		err = p.recvOne(&hb, &scratch)
	}
	p.shutdown(err)
	p.mu.Lock()
	reason := p.broken
	for k, c := range p.pending {
		delete(p.pending, k)
		c.err = fmt.Errorf("nbd: connection unusable: %w", reason)
		close(c.done)
		<-p.slots
	}
	p.mu.Unlock()
}

// finish completes c: it leaves the table and gives its slot back.
func (p *pipe) finish(cookie uint64, c *call) {
	if c.err == nil && c.cmd == cmdRead && c.covered != uint64(c.length) {
		c.err = fmt.Errorf("the server's chunks covered %d of the %d bytes asked", c.covered, c.length)
	}
	p.mu.Lock()
	delete(p.pending, cookie)
	p.mu.Unlock()
	close(c.done)
	<-p.slots
}

// recvOne reads one reply (a simple reply with its data, or one structured chunk) and hands it
// to the request whose handle it carries. An error return breaks the connection.
func (p *pipe) recvOne(hb *[20]byte, scratch *[]byte) error {
	if _, err := io.ReadFull(p.conn, hb[:4]); err != nil {
		return fmt.Errorf("read reply: %w", err)
	}
	n := replyHeaderLen(binary.BigEndian.Uint32(hb[:4]))
	if n == 0 {
		return fmt.Errorf("reply magic %#x is neither simple nor structured", binary.BigEndian.Uint32(hb[:4]))
	}
	if _, err := io.ReadFull(p.conn, hb[4:n]); err != nil {
		return fmt.Errorf("read reply: %w", err)
	}
	h, err := parseReplyHeader(hb[:n])
	if err != nil {
		return err
	}
	p.mu.Lock()
	c := p.pending[h.cookie]
	p.mu.Unlock()
	if c == nil {
		return fmt.Errorf("reply for handle %d, which no request in flight has", h.cookie)
	}
	if !h.structured {
		switch {
		case h.errno != 0:
			c.err = &ServerError{Errno: h.errno}
		case c.cmd == cmdRead:
			if _, err := io.ReadFull(p.conn, c.buf); err != nil {
				return fmt.Errorf("read reply data: %w", err)
			}
			c.covered = uint64(len(c.buf))
		case c.cmd == cmdBlockStatus:
			return errors.New("simple reply without extents to a block status request")
		}
		p.finish(h.cookie, c)
		return nil
	}
	if err := p.chunk(h, c, scratch); err != nil {
		return fmt.Errorf("request %d (%s at %d+%d): %w", h.cookie, cmdName(c.cmd), c.off, c.length, err)
	}
	if h.flags&replyFlagDone != 0 {
		p.finish(h.cookie, c)
	}
	return nil
}

// chunk reads one structured chunk's payload into c.
func (p *pipe) chunk(h replyHeader, c *call, scratch *[]byte) error {
	payload := func(limit uint32) ([]byte, error) {
		if h.length > limit {
			return nil, fmt.Errorf("reply chunk type %d of %d bytes (at most %d)", h.typ, h.length, limit)
		}
		if uint32(cap(*scratch)) < h.length {
			*scratch = make([]byte, h.length)
		}
		b := (*scratch)[:h.length]
		_, err := io.ReadFull(p.conn, b)
		return b, err
	}
	switch {
	case h.typ == chunkNone:
		if h.length != 0 || h.flags&replyFlagDone == 0 {
			return errors.New("NBD_REPLY_TYPE_NONE chunk that is not empty and final")
		}
	case h.typ&chunkErrBit != 0:
		if c.errs++; c.errs > maxErrorChunks {
			return fmt.Errorf("more than %d error chunks", maxErrorChunks)
		}
		b, err := payload(maxErrorChunk)
		if err != nil {
			return err
		}
		e := parseErrorChunk(h.typ, b)
		var se *ServerError
		if !errors.As(e, &se) {
			return e
		}
		if c.err == nil {
			c.err = se
		}
	case h.typ == chunkOffsetData:
		if c.cmd != cmdRead {
			return errors.New("data chunk in the reply to a request that is no read")
		}
		if h.length < 9 {
			return fmt.Errorf("offset-data chunk of %d bytes carries no data", h.length)
		}
		var ob [8]byte
		if _, err := io.ReadFull(p.conn, ob[:]); err != nil {
			return err
		}
		o, k := binary.BigEndian.Uint64(ob[:]), uint64(h.length-8)
		at, err := c.place(o, k)
		if err != nil {
			return err
		}
		if _, err := io.ReadFull(p.conn, c.buf[at:at+k]); err != nil {
			return err
		}
	case h.typ == chunkOffsetHole:
		if c.cmd != cmdRead {
			return errors.New("hole chunk in the reply to a request that is no read")
		}
		b, err := payload(12)
		if err != nil {
			return err
		}
		o, k, err := parseOffsetHole(b)
		if err != nil {
			return err
		}
		at, err := c.place(o, uint64(k))
		if err != nil {
			return err
		}
		clear(c.buf[at : at+uint64(k)])
	case h.typ == chunkBlockStatus:
		if c.cmd != cmdBlockStatus {
			return errors.New("block status chunk in the reply to a request that is no block status")
		}
		b, err := payload(maxStatusChunk)
		if err != nil {
			return err
		}
		id, ext, err := parseBlockStatus(b, c.off)
		if err != nil {
			return err
		}
		if !slices.Contains(p.ctxID, id) {
			return fmt.Errorf("block status for metadata context %d, which was not selected", id)
		}
		if slices.Contains(c.seen, id) {
			return fmt.Errorf("second block status chunk for metadata context %d", id)
		}
		c.seen = append(c.seen, id)
		if id == c.want {
			c.ext = ext
		}
	default:
		return fmt.Errorf("unknown reply chunk type %d", h.typ)
	}
	return nil
}

// place checks that k bytes at offset o lie inside the read c asked for and that the chunks
// do not cover more than that, and returns o's position in c.buf.
func (c *call) place(o, k uint64) (uint64, error) {
	if o < c.off || o-c.off > uint64(c.length) || k > uint64(c.length)-(o-c.off) {
		return 0, fmt.Errorf("reply chunk at %d+%d outside the request %d+%d", o, k, c.off, c.length)
	}
	if c.covered += k; c.covered > uint64(c.length) {
		return 0, fmt.Errorf("reply chunks cover %d bytes of a %d-byte read", c.covered, c.length)
	}
	return o - c.off, nil
}

func cmdName(cmd uint16) string {
	switch cmd {
	case cmdRead:
		return "read"
	case cmdBlockStatus:
		return "block status"
	}
	return fmt.Sprintf("command %d", cmd)
}
