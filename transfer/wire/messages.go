package wire

import "fmt"

// Request flag bits.
const reqUpload = 1

// Response flag bits.
const respStreamed = 1

// Request is the payload of a FrameRequest.
type Request struct {
	Op     Op
	Upload bool   // Data frames on this stream follow, closed by an End frame
	Args   []byte // op-specific arguments
}

// EncodeRequest encodes r.
func EncodeRequest(r Request) []byte {
	var flags byte
	if r.Upload {
		flags |= reqUpload
	}
	return append([]byte{byte(r.Op), flags}, r.Args...)
}

// DecodeRequest decodes a request payload. The op is not checked: an unknown op is the
// server's business to refuse, not a framing error.
func DecodeRequest(p []byte) (Request, error) {
	if len(p) < 2 {
		return Request{}, fmt.Errorf("%w: request of %d bytes", ErrMalformed, len(p))
	}
	if p[1]&^reqUpload != 0 {
		return Request{}, fmt.Errorf("%w: unknown request flags %#x", ErrMalformed, p[1])
	}
	return Request{Op: Op(p[0]), Upload: p[1]&reqUpload != 0, Args: p[2:]}, nil
}

// Response is the payload of a FrameResponse: either Err, or a result Body and, when Streamed,
// Data frames on the stream closed by an End frame.
type Response struct {
	Err      *RemoteError
	Streamed bool
	Body     []byte
}

// EncodeResponse encodes r.
func EncodeResponse(r Response) []byte {
	var e Encoder
	if r.Err != nil {
		encodeRemoteError(&e, r.Err)
		return e.B
	}
	var flags byte
	if r.Streamed {
		flags |= respStreamed
	}
	e.B = append(e.B, byte(ClassOK), flags)
	e.B = append(e.B, r.Body...)
	return e.B
}

// DecodeResponse decodes a response payload.
func DecodeResponse(p []byte) (Response, error) {
	if len(p) < 1 {
		return Response{}, fmt.Errorf("%w: empty response", ErrMalformed)
	}
	if Class(p[0]) != ClassOK {
		d := NewDecoder(p)
		re := decodeRemoteError(d)
		if err := d.Finish(); err != nil {
			return Response{}, err
		}
		return Response{Err: re}, nil
	}
	if len(p) < 2 {
		return Response{}, fmt.Errorf("%w: response without flags", ErrMalformed)
	}
	if p[1]&^respStreamed != 0 {
		return Response{}, fmt.Errorf("%w: unknown response flags %#x", ErrMalformed, p[1])
	}
	return Response{Streamed: p[1]&respStreamed != 0, Body: p[2:]}, nil
}

// EncodeEnd encodes the payload of an End frame: empty for a clean end, else the error.
func EncodeEnd(re *RemoteError) []byte {
	if re == nil {
		return nil
	}
	var e Encoder
	encodeRemoteError(&e, re)
	return e.B
}

// DecodeEnd decodes an End payload; a nil error means the stream ended cleanly.
func DecodeEnd(p []byte) (*RemoteError, error) {
	if len(p) == 0 {
		return nil, nil
	}
	d := NewDecoder(p)
	re := decodeRemoteError(d)
	return re, d.Finish()
}

// EncodeWindow encodes a window increment.
func EncodeWindow(n uint32) []byte {
	var e Encoder
	e.Uvarint(uint64(n))
	return e.B
}

// DecodeWindow decodes a window increment; zero is malformed.
func DecodeWindow(p []byte) (uint32, error) {
	d := NewDecoder(p)
	n := d.Uint32()
	if err := d.Finish(); err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, fmt.Errorf("%w: zero window increment", ErrMalformed)
	}
	return n, nil
}
