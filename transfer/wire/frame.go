package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// FrameType says what a frame carries. The numbers are part of the protocol.
type FrameType uint8

// Frame types. See docs/wire-protocol.md for the payload of each.
const (
	FrameHello    FrameType = 1 // client -> server, stream 0: Hello
	FrameHelloAck FrameType = 2 // server -> client, stream 0: HelloReply
	FrameRequest  FrameType = 3 // client -> server: op, flags, arguments
	FrameResponse FrameType = 4 // server -> client: status, flags, result
	FrameData     FrameType = 5 // either way: a chunk of a streamed body
	FrameEnd      FrameType = 6 // either way: end of a streamed body, empty or with an error
	FrameWindow   FrameType = 7 // either way: the receiver grants more bytes to a stream
	FrameCancel   FrameType = 8 // client -> server: abandon a request
)

func (t FrameType) String() string {
	switch t {
	case FrameHello:
		return "hello"
	case FrameHelloAck:
		return "hello-ack"
	case FrameRequest:
		return "request"
	case FrameResponse:
		return "response"
	case FrameData:
		return "data"
	case FrameEnd:
		return "end"
	case FrameWindow:
		return "window"
	case FrameCancel:
		return "cancel"
	}
	return fmt.Sprintf("frame-type-%d", uint8(t))
}

// HeaderSize is the fixed size of a frame header: type (1 byte), stream id (4), payload length (4).
const HeaderSize = 9

// MaxPayload is the largest payload a frame may carry. Decoders reject larger frames before
// allocating, so a hostile or confused peer cannot make us allocate more than this per frame.
const MaxPayload = 256 << 10

// ErrMalformed is wrapped by every decoding error caused by bytes that break the protocol.
var ErrMalformed = errors.New("malformed wire data")

// Frame is one unit on the link. Payload is owned by the frame once it is handed to a writer.
type Frame struct {
	Type    FrameType
	Stream  uint32
	Payload []byte
	pooled  bool       // Payload comes from chunkPool; the writer gives it back once written
	file    *fileChunk // the body is in a file, not in Payload (SendFile)
}

// AppendFrame appends the encoding of f to b.
func AppendFrame(b []byte, f Frame) []byte {
	b = append(b, byte(f.Type))
	b = binary.BigEndian.AppendUint32(b, f.Stream)
	b = binary.BigEndian.AppendUint32(b, uint32(len(f.Payload)))
	return append(b, f.Payload...)
}

// WriteFrame writes f to w; the payload must not exceed MaxPayload.
func WriteFrame(w io.Writer, f Frame) error {
	if len(f.Payload) > MaxPayload {
		return fmt.Errorf("write %s frame: payload of %d bytes exceeds the limit of %d", f.Type, len(f.Payload), MaxPayload)
	}
	var hdr [HeaderSize]byte
	hdr[0] = byte(f.Type)
	binary.BigEndian.PutUint32(hdr[1:5], f.Stream)
	binary.BigEndian.PutUint32(hdr[5:9], uint32(len(f.Payload)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	if len(f.Payload) > 0 {
		if _, err := w.Write(f.Payload); err != nil {
			return err
		}
	}
	return nil
}

// ReadFrame reads one frame. It returns io.EOF only when r ends cleanly between frames,
// io.ErrUnexpectedEOF when it ends inside one, and an ErrMalformed error for an unknown type
// or an oversized payload.
func ReadFrame(r *bufio.Reader) (Frame, error) {
	return readFrame(r, func(_ FrameType, n int) []byte { return make([]byte, n) })
}

// readFrame is ReadFrame with the payload buffer taken from alloc(type, size).
func readFrame(r *bufio.Reader, alloc func(FrameType, int) []byte) (Frame, error) {
	return readFrameDirect(r, nil, alloc)
}

// directRead is the least payload remainder read from the link straight into the payload
// buffer: a smaller one goes through r, whose read also picks up the frames behind it.
const directRead = 16 << 10

// readFrameDirect is readFrame where link, if not nil, is what r reads from: a payload's bytes
// beyond those r already holds are read from link straight into the payload buffer when at
// least directRead of them are left. Through r every byte of a download was copied twice on the
// way from an SSH channel to the stream (channel -> r's buffer -> chunk); r's own Read only
// bypasses its buffer for reads as large as the buffer (256 KiB), and chunks are 128 KiB.
func readFrameDirect(r *bufio.Reader, link io.Reader, alloc func(FrameType, int) []byte) (Frame, error) {
	var hdr [HeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Frame{}, err
	}
	f, n, err := parseHeader(hdr[:])
	if err != nil {
		return Frame{}, err
	}
	if n > 0 {
		f.Payload = alloc(f.Type, n)
		if err := readPayload(r, link, f.Payload); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return Frame{}, err
		}
	}
	return f, nil
}

// readPayload fills p with what r holds and then, see readFrameDirect, from link or r.
func readPayload(r *bufio.Reader, link io.Reader, p []byte) error {
	if link == nil || len(p)-r.Buffered() < directRead {
		_, err := io.ReadFull(r, p)
		return err
	}
	held := 0
	if k := r.Buffered(); k > 0 {
		held, _ = r.Read(p[:k]) // copies only what r holds; it cannot fail while r holds bytes
	}
	_, err := io.ReadFull(link, p[held:]) // an EOF here is a cut payload: readFrameDirect says so
	return err
}

// DecodeFrame decodes exactly one frame from b (no trailing bytes allowed).
func DecodeFrame(b []byte) (Frame, error) {
	if len(b) < HeaderSize {
		return Frame{}, fmt.Errorf("%w: frame of %d bytes is shorter than its header", ErrMalformed, len(b))
	}
	f, n, err := parseHeader(b[:HeaderSize])
	if err != nil {
		return Frame{}, err
	}
	if len(b)-HeaderSize != n {
		return Frame{}, fmt.Errorf("%w: %s frame announces %d payload bytes but has %d", ErrMalformed, f.Type, n, len(b)-HeaderSize)
	}
	if n > 0 {
		f.Payload = append([]byte(nil), b[HeaderSize:]...)
	}
	return f, nil
}

func parseHeader(hdr []byte) (Frame, int, error) {
	f := Frame{Type: FrameType(hdr[0]), Stream: binary.BigEndian.Uint32(hdr[1:5])}
	n := binary.BigEndian.Uint32(hdr[5:9])
	if f.Type < FrameHello || f.Type > FrameCancel {
		return Frame{}, 0, fmt.Errorf("%w: unknown frame type %d", ErrMalformed, hdr[0])
	}
	if n > MaxPayload {
		return Frame{}, 0, fmt.Errorf("%w: %s frame payload of %d bytes exceeds the limit of %d", ErrMalformed, f.Type, n, MaxPayload)
	}
	return f, int(n), nil
}
