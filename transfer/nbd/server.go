package nbd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// Export is one read-only disk a Server offers.
type Export struct {
	Name string
	Size int64
	Data io.ReaderAt
}

// Server serves read-only exports over the NBD protocol (fixed newstyle; NBD_OPT_GO, INFO and
// EXPORT_NAME; simple replies). Writes are refused with EPERM: a client that wants to write
// puts an overlay on top (qemu-img create -b). Each connection is served in its own goroutine,
// several of its reads at once (Export.Data must allow concurrent ReadAt, as io.ReaderAt says).
type Server struct {
	exports map[string]Export
	served  atomic.Int64
	wg      sync.WaitGroup
}

// NewServer makes a server of the exports.
func NewServer(exports ...Export) *Server {
	s := &Server{exports: map[string]Export{}}
	for _, e := range exports {
		s.exports[e.Name] = e
	}
	return s
}

// BytesServed is how many bytes of export data were sent so far.
func (s *Server) BytesServed() int64 { return s.served.Load() }

// Serve accepts connections on l until ctx ends or l is closed, then closes open connections
// and waits for their goroutines.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	defer s.wg.Wait()
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			unhook := context.AfterFunc(ctx, func() { conn.Close() })
			defer unhook()
			defer conn.Close()
			_ = s.serveConn(conn)
		}()
	}
}

func (s *Server) serveConn(conn net.Conn) error {
	greet := binary.BigEndian.AppendUint64(nil, magicNBD)
	greet = binary.BigEndian.AppendUint64(greet, magicOpt)
	greet = binary.BigEndian.AppendUint16(greet, flagFixedNewstyle|flagNoZeroes)
	if _, err := conn.Write(greet); err != nil {
		return err
	}
	var cf [4]byte
	if _, err := io.ReadFull(conn, cf[:]); err != nil {
		return err
	}
	noZeroes := binary.BigEndian.Uint32(cf[:])&2 != 0
	exp, err := s.negotiate(conn, noZeroes)
	if err != nil || exp == nil {
		return err
	}
	return s.transmit(conn, *exp)
}

// negotiate runs the option haggling; it returns the export chosen, or nil when the client
// aborted.
func (s *Server) negotiate(conn net.Conn, noZeroes bool) (*Export, error) {
	var hb [16]byte
	for {
		if _, err := io.ReadFull(conn, hb[:]); err != nil {
			return nil, err
		}
		opt, n, err := parseOption(hb[:])
		if err != nil {
			return nil, err
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(conn, data); err != nil {
			return nil, err
		}
		switch opt {
		case optExportName:
			e, ok := s.exports[string(data)]
			if !ok {
				return nil, fmt.Errorf("client asked for unknown export %q", data)
			}
			b := binary.BigEndian.AppendUint64(nil, uint64(e.Size))
			b = binary.BigEndian.AppendUint16(b, TransHasFlags|TransReadOnly|TransFlush)
			if !noZeroes {
				b = append(b, make([]byte, 124)...)
			}
			_, err := conn.Write(b)
			return &e, err
		case optGo, optInfo:
			name, _, err := parseGoRequest(data)
			if err != nil {
				if err := optReplyTo(conn, opt, repErrInvalid, []byte(err.Error())); err != nil {
					return nil, err
				}
				continue
			}
			e, ok := s.exports[name]
			if !ok {
				if err := optReplyTo(conn, opt, repErrUnknown, []byte("no such export")); err != nil {
					return nil, err
				}
				continue
			}
			info := binary.BigEndian.AppendUint16(nil, infoExport)
			info = binary.BigEndian.AppendUint64(info, uint64(e.Size))
			info = binary.BigEndian.AppendUint16(info, TransHasFlags|TransReadOnly|TransFlush)
			if err := optReplyTo(conn, opt, repInfo, info); err != nil {
				return nil, err
			}
			if err := optReplyTo(conn, opt, repAck, nil); err != nil {
				return nil, err
			}
			if opt == optGo {
				return &e, nil
			}
		case optAbort:
			_ = optReplyTo(conn, opt, repAck, nil)
			return nil, nil
		default:
			if err := optReplyTo(conn, opt, repErrUnsup, nil); err != nil {
				return nil, err
			}
		}
	}
}

func optReplyTo(w io.Writer, opt, typ uint32, data []byte) error {
	b := binary.BigEndian.AppendUint64(nil, magicOptReply)
	b = binary.BigEndian.AppendUint32(b, opt)
	b = binary.BigEndian.AppendUint32(b, typ)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	_, err := w.Write(append(b, data...))
	return err
}

// A connection's requests are served concurrently, at most serverWindow at once and reads of
// at most serverWindowBytes together (one larger read runs alone), so a client that sends many
// large reads cannot make the server hold much.
const (
	serverWindow      = 8
	serverWindowBytes = 16 << 20
)

// transmit answers requests until the client disconnects: it reads them in order and serves
// each read in its own goroutine within the window; replies go out as they are ready (the
// handle tells the client which is which), one at a time.
func (s *Server) transmit(conn net.Conn, e Export) error {
	var wmu sync.Mutex
	reply := func(cookie uint64, errno uint32, data []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		return simpleReply(conn, cookie, errno, data)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	budget := newBudget(serverWindow, serverWindowBytes)
	var hb [28]byte
	for {
		if _, err := io.ReadFull(conn, hb[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		req, err := parseRequest(hb[:])
		if err != nil {
			return err
		}
		switch req.typ {
		case cmdRead:
			if req.length > MaxRequest || req.offset > uint64(e.Size) || uint64(req.length) > uint64(e.Size)-req.offset {
				if err := reply(req.cookie, errInvalid, nil); err != nil {
					return err
				}
				continue
			}
			budget.acquire(int64(req.length))
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer budget.release(int64(req.length))
				buf := make([]byte, req.length)
				errno := uint32(0)
				if n, _ := e.Data.ReadAt(buf, int64(req.offset)); n < len(buf) {
					errno, buf = errIO, nil
				}
				// Counted before the reply goes out: a client that has its bytes must find them
				// counted (the count is read after a read returns); taken back if the reply fails.
				s.served.Add(int64(len(buf)))
				if err := reply(req.cookie, errno, buf); err != nil {
					s.served.Add(-int64(len(buf)))
					conn.Close() // the read loop ends with it
					return
				}
			}()
		case cmdDisc:
			return nil
		case cmdFlush:
			if err := reply(req.cookie, 0, nil); err != nil {
				return err
			}
		case cmdWrite:
			if req.length > MaxRequest {
				return fmt.Errorf("write of %d bytes", req.length)
			}
			if _, err := io.CopyN(io.Discard, conn, int64(req.length)); err != nil {
				return err
			}
			if err := reply(req.cookie, errPerm, nil); err != nil {
				return err
			}
		default:
			if err := reply(req.cookie, errInvalid, nil); err != nil {
				return err
			}
		}
	}
}

// budget bounds the requests a connection serves at once, by count and by bytes. Only the
// connection's read loop acquires; the goroutines serving requests release.
type budget struct {
	mu         sync.Mutex
	cond       *sync.Cond
	n, max     int
	used, maxB int64
}

func newBudget(n int, bytes int64) *budget {
	b := &budget{max: n, maxB: bytes}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// acquire waits until one more request of size bytes fits; a request larger than the whole
// byte budget waits until it runs alone.
func (b *budget) acquire(size int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.n >= b.max || (b.n > 0 && b.used+size > b.maxB) {
		b.cond.Wait()
	}
	b.n++
	b.used += size
}

func (b *budget) release(size int64) {
	b.mu.Lock()
	b.n--
	b.used -= size
	b.mu.Unlock()
	b.cond.Signal()
}

func simpleReply(w io.Writer, cookie uint64, errno uint32, data []byte) error {
	var b [16]byte
	binary.BigEndian.PutUint32(b[:], magicSimple)
	binary.BigEndian.PutUint32(b[4:], errno)
	binary.BigEndian.PutUint64(b[8:], cookie)
	bufs := net.Buffers{b[:], data} // one writev, no copy of the data
	_, err := bufs.WriteTo(w)
	return err
}
