package wire

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// ErrClosed is wrapped by the errors of calls on a session closed by Close.
var ErrClosed = errors.New("wire session closed")

// ErrLinkLost is wrapped by the errors of calls pending when the link broke (peer gone, pipe
// closed, protocol violation).
var ErrLinkLost = errors.New("wire link lost")

// Handler serves one request on the server side. It reads the upload (if any) from st, calls
// st.Respond exactly once and, for a streamed response, writes the body and calls st.CloseWrite.
// The session cleans up after a handler that forgets: it answers or ends the stream with an
// error. ctx ends when the client cancels the request or the link is lost.
type Handler func(ctx context.Context, st *Stream, req Request)

// Session multiplexes streams over one link. A client session opens streams; a server session
// runs a Handler per request. Both are safe for concurrent use.
type Session struct {
	br      *bufio.Reader
	link    io.Reader // what br reads from: large payloads are read from it directly
	bw      *bufio.Writer
	files   *fileWriter // writes the data frames of SendFile
	out     chan Frame
	done    chan struct{} // closed once the session is dead; err is set before
	errOnce sync.Once
	err     error
	ctx     context.Context // server: parent of the handlers' contexts
	cancel  context.CancelFunc

	server     bool
	window     int
	maxStreams int
	handler    Handler
	handlers   sync.WaitGroup
	sem        chan struct{} // client: one token per open stream

	// ready is closed once the HelloAck of a DialEarly session was read (nil: Dial read it
	// before the session existed); reply and handshakeErr are set before (under mu).
	ready        chan struct{}
	reply        HelloReply
	handshakeErr error

	mu      sync.Mutex
	streams map[uint32]*Stream
	nextID  uint32

	readerDone chan struct{}
	writerDone chan struct{} // closed when writeLoop has returned

	stats sessionStats // client: requests opened, round trips waited for, the trace
}

func newSession(r *bufio.Reader, link io.Reader, w io.Writer, server bool, window, maxStreams int) *Session {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Session{
		br:         r,
		link:       link,
		bw:         bufio.NewWriterSize(w, 64<<10),
		files:      newFileWriter(w),
		out:        make(chan Frame, 64),
		done:       make(chan struct{}),
		ctx:        ctx,
		cancel:     cancel,
		server:     server,
		window:     window,
		maxStreams: maxStreams,
		streams:    make(map[uint32]*Stream),
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	if !server {
		s.sem = make(chan struct{}, maxStreams)
	}
	return s
}

func (s *Session) start() {
	go s.writeLoop()
	go s.readLoop()
}

// Err returns why the session died, or nil while it lives.
func (s *Session) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Done is closed when the session is dead.
func (s *Session) Done() <-chan struct{} { return s.done }

// Close ends the session: pending calls fail with ErrClosed, handlers are canceled. It does not
// close the underlying reader or writer; their owner does (closing the writer is what tells the
// peer the session is over).
func (s *Session) Close() error {
	s.fail(ErrClosed)
	return nil
}

// closeWriterWait bounds how long CloseForOwner waits for the writer to stop.
const closeWriterWait = 2 * time.Second

// CloseForOwner is Close for the owner of the link, who closes the writer next: it also waits
// until the session's writer has returned, so closing an SSH channel does not race a Write in
// flight (x/crypto/ssh sets and reads its EOF flag without a lock). The writer stops at once
// after Close unless a write is stuck on a dead link; that one is not waited for long.
func (s *Session) CloseForOwner() {
	s.Close()
	select {
	case <-s.writerDone:
	case <-time.After(closeWriterWait):
	}
}

// Wait blocks until the peer's side of the link ended (or Close was called) and, on a server,
// every handler has returned. It returns nil when the peer closed the link cleanly between frames.
func (s *Session) Wait() error {
	<-s.done
	s.handlers.Wait()
	if errors.Is(s.err, io.EOF) || errors.Is(s.err, ErrClosed) {
		return nil
	}
	return s.err
}

func (s *Session) fail(err error) {
	s.errOnce.Do(func() {
		if !errors.Is(err, ErrClosed) {
			err = fmt.Errorf("%w: %w", ErrLinkLost, err)
		}
		s.err = err
		close(s.done)
		s.cancel()
	})
}

// send queues f for the writer. It fails when the session is dead or ctx ends first.
func (s *Session) send(ctx context.Context, f Frame) error {
	select {
	case <-s.done:
		return s.err
	default:
	}
	select {
	case s.out <- f:
		return nil
	case <-s.done:
		return s.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writeLoop is the only writer of the link. It flushes whenever the queue runs dry, so small
// frames sent together share one write and a lone frame is never held back.
func (s *Session) writeLoop() {
	defer close(s.writerDone)
	defer s.files.close()
	if s.bw.Buffered() > 0 { // a client's Hello (DialEarly)
		if err := s.bw.Flush(); err != nil {
			s.fail(fmt.Errorf("write to peer: %w", err))
			return
		}
	}
	for {
		select {
		case f := <-s.out:
			var err error
			if f.file != nil {
				err = s.files.write(s.bw, f)
			} else {
				err = WriteFrame(s.bw, f)
			}
			if err != nil {
				s.fail(fmt.Errorf("write to peer: %w", err))
				return
			}
			if f.pooled { // bw holds a copy or has written it through
				putChunk(f.Payload)
			}
			if len(s.out) == 0 {
				if err := s.bw.Flush(); err != nil {
					s.fail(fmt.Errorf("write to peer: %w", err))
					return
				}
			}
		case <-s.done:
			return
		}
	}
}

// readLoop is the only reader of the link. It never blocks on a stream: data goes into the
// stream's buffer, which the window keeps bounded.
func (s *Session) readLoop() {
	defer close(s.readerDone)
	for {
		f, err := readFrameDirect(s.br, s.link, framePayload)
		if err != nil {
			if err == io.EOF {
				err = fmt.Errorf("peer closed the link: %w", io.EOF)
			} else {
				err = fmt.Errorf("read from peer: %w", err)
			}
			s.fail(err)
			return
		}
		if err := s.dispatch(f); err != nil {
			s.fail(fmt.Errorf("protocol error from peer: %w", err))
			return
		}
	}
}

// framePayload takes data frames' payloads from the chunk pool; Stream.Read gives them back.
func framePayload(t FrameType, n int) []byte {
	if t == FrameData && n <= ChunkSize {
		return getChunk(n)
	}
	return make([]byte, n)
}

func (s *Session) lookup(id uint32) *Stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams[id]
}

func (s *Session) remove(st *Stream) {
	s.mu.Lock()
	if s.streams[st.id] == st {
		delete(s.streams, st.id)
	}
	s.mu.Unlock()
}

func (s *Session) dispatch(f Frame) error {
	switch f.Type {
	case FrameRequest:
		if !s.server {
			return fmt.Errorf("%w: request frame sent to a client", ErrMalformed)
		}
		req, err := DecodeRequest(f.Payload)
		if err != nil {
			return err
		}
		return s.startHandler(f.Stream, req)
	case FrameResponse:
		if s.server {
			return fmt.Errorf("%w: response frame sent to a server", ErrMalformed)
		}
		resp, err := DecodeResponse(f.Payload)
		if err != nil {
			return err
		}
		if st := s.lookup(f.Stream); st != nil {
			return st.deliverResponse(resp)
		}
	case FrameData:
		if st := s.lookup(f.Stream); st != nil {
			return st.deliverData(f.Payload)
		}
		putChunk(f.Payload)
	case FrameEnd:
		re, err := DecodeEnd(f.Payload)
		if err != nil {
			return err
		}
		if st := s.lookup(f.Stream); st != nil {
			return st.deliverEnd(re)
		}
	case FrameWindow:
		n, err := DecodeWindow(f.Payload)
		if err != nil {
			return err
		}
		if st := s.lookup(f.Stream); st != nil {
			st.addCredit(int(n))
		}
	case FrameCancel:
		if !s.server {
			return fmt.Errorf("%w: cancel frame sent to a client", ErrMalformed)
		}
		if st := s.lookup(f.Stream); st != nil {
			st.peerCancel()
		}
	default:
		return fmt.Errorf("%w: unexpected %s frame after the handshake", ErrMalformed, f.Type)
	}
	// Frames for unknown streams are dropped: they were in flight when the stream ended.
	return nil
}

func (s *Session) startHandler(id uint32, req Request) error {
	s.mu.Lock()
	if _, dup := s.streams[id]; dup {
		s.mu.Unlock()
		return fmt.Errorf("%w: request on stream %d which is still open", ErrMalformed, id)
	}
	if len(s.streams) >= s.maxStreams {
		s.mu.Unlock()
		return fmt.Errorf("%w: more than %d streams open", ErrMalformed, s.maxStreams)
	}
	st := newStream(s, id, s.ctx)
	st.inExpected = req.Upload
	s.streams[id] = st
	s.mu.Unlock()
	s.handlers.Add(1)
	go func() {
		defer s.handlers.Done()
		defer st.finishServer()
		s.handler(st.ctx, st, req)
	}()
	return nil
}

// Open starts a request on a client session. upload says whether the caller will stream a body
// with Write and CloseWrite. The caller must Close the stream when done with it; Open blocks
// while the server's limit of open streams is reached.
func (s *Session) Open(ctx context.Context, op Op, args []byte, upload bool) (*Stream, error) {
	if s.server {
		return nil, errors.New("open stream: not a client session")
	}
	if upload && s.ready != nil {
		// An upload's window is known only from the server's answer.
		select {
		case <-s.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.done:
			return nil, s.err
		}
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.done:
		return nil, s.err
	}
	s.mu.Lock()
	s.nextID++
	st := newStream(s, s.nextID, ctx)
	st.upload = upload
	s.streams[st.id] = st
	s.mu.Unlock()
	s.noteOpen(st, op, args)
	if err := s.send(ctx, Frame{Type: FrameRequest, Stream: st.id, Payload: EncodeRequest(Request{Op: op, Upload: upload, Args: args})}); err != nil {
		st.forget()
		return nil, err
	}
	return st, nil
}
