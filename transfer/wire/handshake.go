package wire

import (
	"bufio"
	"context"
	"fmt"
	"io"
)

// Dial runs the client half of the handshake over r and w and starts a client session. ctx
// bounds the handshake only. On error the caller closes r and w (which also ends the goroutine
// still blocked reading a silent peer).
func Dial(ctx context.Context, r io.Reader, w io.Writer, h Hello) (*Session, HelloReply, error) {
	if h.MinVersion == 0 {
		h.MinVersion, h.MaxVersion = MinVersion, MaxVersion
	}
	type result struct {
		br    *bufio.Reader
		reply HelloReply
		err   error
	}
	ch := make(chan result, 1)
	go func() {
		br := bufio.NewReaderSize(r, 256<<10)
		reply, err := clientHandshake(br, w, h)
		ch <- result{br, reply, err}
	}()
	var res result
	select {
	case res = <-ch:
	case <-ctx.Done():
		return nil, HelloReply{}, fmt.Errorf("wire handshake: %w", ctx.Err())
	}
	if res.err != nil {
		return nil, HelloReply{}, fmt.Errorf("wire handshake: %w", res.err)
	}
	s := newSession(res.br, w, false, int(res.reply.Window), int(res.reply.MaxStreams))
	s.start()
	return s, res.reply, nil
}

func clientHandshake(br *bufio.Reader, w io.Writer, h Hello) (HelloReply, error) {
	msg := AppendFrame([]byte(Magic), Frame{Type: FrameHello, Payload: EncodeHello(h)})
	if _, err := w.Write(msg); err != nil {
		return HelloReply{}, fmt.Errorf("send hello: %w", err)
	}
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
	s := newSession(br, w, true, int(reply.Window), int(reply.MaxStreams))
	s.handler = handler
	s.start()
	return s, h, nil
}

func writeAll(w io.Writer, p []byte) error {
	_, err := w.Write(p)
	return err
}
