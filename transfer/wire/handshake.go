package wire

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Dial runs the client half of the handshake over r and w and starts a client session. ctx
// bounds the handshake only. On error the caller closes r and w (which also ends the goroutine
// still blocked reading a silent peer).
func Dial(ctx context.Context, r io.Reader, w io.Writer, h Hello) (*Session, HelloReply, error) {
	s := DialEarly(r, w, h, nil, time.Time{})
	reply, err := s.Handshake(ctx)
	if err != nil {
		s.Close()
		return nil, HelloReply{}, err
	}
	return s, reply, nil
}

// EarlyStreams is how many requests a client opens before the server's HelloAck arrived
// (DialEarly): every server announces at least this many streams (all builds announce
// DefaultMaxStreams).
const EarlyStreams = 4

// DialEarly writes the magic and the Hello and returns the client session at once: requests
// without an upload body opened before the server's HelloAck arrived (at most EarlyStreams) go
// out right behind the Hello, so their answers come back with the handshake's, one round trip
// earlier. The server reads frames after the Hello from the same buffer, so servers of every
// version take them (docs/wire-protocol.md, "Handshake"); a server that refuses the handshake
// never runs them. Handshake waits for the answer; requests with an upload wait for it too
// (the window is not known before). When the handshake fails the session fails with its error.
//
// trace, if not nil, gets the session's trace (SetTrace) from the Hello on. The Hello counts as
// a serial round trip in Stats (the requests sent with it do not add one).
func DialEarly(r io.Reader, w io.Writer, h Hello, trace io.Writer, since time.Time) *Session {
	if h.MinVersion == 0 {
		h.MinVersion, h.MaxVersion = MinVersion, MaxVersion
	}
	br := bufio.NewReaderSize(r, 256<<10)
	s := newSession(br, r, w, false, 0, maxStreamsLimit)
	// The writer sends the Hello first (a write error fails the session, and Handshake with it).
	_, _ = s.bw.Write(AppendFrame([]byte(Magic), Frame{Type: FrameHello, Payload: EncodeHello(h)}))
	s.ready = make(chan struct{})
	if trace != nil {
		s.SetTrace(trace, since)
	}
	sent := time.Now()
	s.stats.serial.Add(1)
	s.stats.unfinished.Add(1) // the Hello is in flight: requests sent with it wait no round trip of their own
	s.tracef("* hello         %s", Magic[:len(Magic)-1])
	// Until the answer says how many streams the server allows, only EarlyStreams slots are
	// free: the others hold a reserved token (see acceptReply).
	for range maxStreamsLimit - EarlyStreams {
		s.sem <- struct{}{}
	}
	go s.writeLoop()
	go func() {
		reply, err := readHelloReply(br, h)
		if err == nil {
			err = s.acceptReply(reply)
		}
		s.mu.Lock()
		s.reply, s.handshakeErr = reply, err
		s.mu.Unlock()
		s.stats.unfinished.Add(-1)
		s.tracef("  hello #0     after %.3f ms (server %s)", float64(time.Since(sent).Microseconds())/1000, reply.Program)
		if err != nil {
			close(s.ready) // before fail: Handshake reports this error, not the session's
			s.fail(fmt.Errorf("wire handshake: %w", err))
			return
		}
		close(s.ready)
		if s.Err() == nil { // not given up meanwhile (Dial's ctx ended)
			s.readLoop()
		}
	}()
	return s
}

// acceptReply applies the server's flow-control parameters to the session and to the streams
// opened before they were known. No frame of those streams has been read yet: the reader starts
// after this.
func (s *Session) acceptReply(reply HelloReply) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.streams); n > int(reply.MaxStreams) {
		return fmt.Errorf("server allows %d streams, %d requests were sent before its answer", reply.MaxStreams, n)
	}
	s.window, s.maxStreams = int(reply.Window), int(reply.MaxStreams)
	for _, st := range s.streams {
		st.mu.Lock()
		st.inAllowed += s.window
		st.outCredit += s.window
		st.mu.Unlock()
	}
	// Free the reserved slots up to the server's limit, or take back the early ones it does
	// not allow (those not in use now; the others as their streams end).
	for range int(reply.MaxStreams) - EarlyStreams {
		<-s.sem
	}
	for i := range EarlyStreams - int(reply.MaxStreams) {
		select {
		case s.sem <- struct{}{}:
		default:
			go func(n int) {
				for range n {
					select {
					case s.sem <- struct{}{}:
					case <-s.done:
						return
					}
				}
			}(EarlyStreams - int(reply.MaxStreams) - i)
			return nil
		}
	}
	return nil
}

// Handshake waits for the server's HelloAck of a DialEarly session and returns it. Without
// DialEarly (a session from Dial) it returns the reply at once.
func (s *Session) Handshake(ctx context.Context) (HelloReply, error) {
	if s.ready == nil {
		return HelloReply{}, errors.New("wire handshake: not an early client session")
	}
	select {
	case <-s.ready:
	case <-s.done: // the Hello could not be sent
		select {
		case <-s.ready:
		default:
			return HelloReply{}, fmt.Errorf("wire handshake: %w", s.err)
		}
	case <-ctx.Done():
		return HelloReply{}, fmt.Errorf("wire handshake: %w", ctx.Err())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.handshakeErr != nil {
		return HelloReply{}, fmt.Errorf("wire handshake: %w", s.handshakeErr)
	}
	return s.reply, nil
}

// readHelloReply reads the server's magic and HelloAck and checks it against the Hello sent.
func readHelloReply(br *bufio.Reader, h Hello) (HelloReply, error) {
	if err := readMagic(br); err != nil {
		return HelloReply{}, err
	}
	f, err := ReadFrame(br)
	if err != nil {
		return HelloReply{}, fmt.Errorf("read hello reply: %w", err)
	}
	if f.Type != FrameHelloAck {
		return HelloReply{}, fmt.Errorf("read hello reply: %w: got a %s frame", ErrMalformed, f.Type)
	}
	reply, err := DecodeHelloReply(f.Payload)
	if err != nil {
		return HelloReply{}, err
	}
	if reply.Version == 0 {
		return HelloReply{}, fmt.Errorf("server refused the connection: %s", reply.Error)
	}
	if reply.Version < h.MinVersion || reply.Version > h.MaxVersion {
		return HelloReply{}, fmt.Errorf("server chose protocol version %d outside our range %d..%d", reply.Version, h.MinVersion, h.MaxVersion)
	}
	return reply, nil
}

// Accept runs the server half of the handshake and starts a server session that runs handler
// for every request. answer fills in the reply (program, capabilities, root, append-only,
// flow-control parameters; zero values take the defaults) once the client's Hello is known;
// Version is chosen here. Wait on the session to serve until the client goes away.
func Accept(r io.Reader, w io.Writer, answer func(Hello) HelloReply, handler Handler) (*Session, Hello, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	magic := make([]byte, len(Magic))
	if _, err := io.ReadFull(br, magic); err != nil {
		return nil, Hello{}, fmt.Errorf("wire handshake: read magic: %w", err)
	}
	if string(magic) != Magic {
		return nil, Hello{}, fmt.Errorf("wire handshake: %w: client did not start with the magic (got %q)", ErrMalformed, magic)
	}
	f, err := ReadFrame(br)
	if err != nil {
		return nil, Hello{}, fmt.Errorf("wire handshake: read hello: %w", err)
	}
	if f.Type != FrameHello {
		return nil, Hello{}, fmt.Errorf("wire handshake: %w: got a %s frame instead of hello", ErrMalformed, f.Type)
	}
	h, err := DecodeHello(f.Payload)
	if err != nil {
		return nil, Hello{}, fmt.Errorf("wire handshake: %w", err)
	}
	lo, hi := max(h.MinVersion, MinVersion), min(h.MaxVersion, MaxVersion)
	var reply HelloReply
	if lo > hi {
		reply = HelloReply{Error: fmt.Sprintf("no common protocol version: client speaks %d..%d, server %d..%d; install the same snapferry version on both hosts",
			h.MinVersion, h.MaxVersion, MinVersion, MaxVersion)}
	} else {
		reply = answer(h)
		reply.Version = hi
		if reply.Window == 0 {
			reply.Window = DefaultWindow
		}
		if reply.MaxStreams == 0 {
			reply.MaxStreams = DefaultMaxStreams
		}
	}
	if err := writeAll(w, AppendFrame([]byte(Magic), Frame{Type: FrameHelloAck, Payload: EncodeHelloReply(reply)})); err != nil {
		return nil, h, fmt.Errorf("wire handshake: send reply: %w", err)
	}
	if reply.Version == 0 {
		return nil, h, fmt.Errorf("wire handshake: %s", reply.Error)
	}
	s := newSession(br, r, w, true, int(reply.Window), int(reply.MaxStreams))
	s.handler = handler
	s.start()
	return s, h, nil
}

func writeAll(w io.Writer, p []byte) error {
	_, err := w.Write(p)
	return err
}
