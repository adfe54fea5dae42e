package wire

import (
	"bytes"
	"testing"
)

// FuzzDecodeFrame feeds arbitrary bytes to the frame decoder and to the payload decoder of the
// frame's type. Nothing may panic; whatever decodes must re-encode to the same bytes (one
// encoding per value), which keeps the decoders strict.
func FuzzDecodeFrame(f *testing.F) {
	seeds := []Frame{
		{Type: FrameHello, Payload: EncodeHello(Hello{MinVersion: 1, MaxVersion: 1, Program: "x", Caps: []string{CapStore}})},
		{Type: FrameHelloAck, Payload: EncodeHelloReply(HelloReply{Version: 1, Root: "/r", MaxStreams: 4, Window: 1 << 20})},
		{Type: FrameHelloAck, Payload: EncodeHelloReply(HelloReply{Error: "no"})},
		{Type: FrameRequest, Stream: 1, Payload: EncodeRequest(Request{Op: OpSave, Upload: true, Args: []byte("data/ab")})},
		{Type: FrameResponse, Stream: 1, Payload: EncodeResponse(Response{Streamed: true, Body: []byte{1}})},
		{Type: FrameResponse, Stream: 1, Payload: EncodeResponse(Response{Err: &RemoteError{Class: ClassNotExist, Message: "gone"}})},
		{Type: FrameData, Stream: 2, Payload: []byte("chunk")},
		{Type: FrameEnd, Stream: 2},
		{Type: FrameEnd, Stream: 2, Payload: EncodeEnd(&RemoteError{Class: ClassOther, Message: "io"})},
		{Type: FrameWindow, Stream: 2, Payload: EncodeWindow(4096)},
		{Type: FrameCancel, Stream: 9},
	}
	for _, s := range seeds {
		f.Add(AppendFrame(nil, s))
	}
	f.Add([]byte{})
	f.Add([]byte{byte(FrameData), 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := DecodeFrame(b)
		if err != nil {
			return
		}
		if !bytes.Equal(AppendFrame(nil, fr), b) {
			t.Fatalf("frame does not re-encode to its input")
		}
		switch fr.Type {
		case FrameHello:
			if h, err := DecodeHello(fr.Payload); err == nil && !bytes.Equal(EncodeHello(h), fr.Payload) {
				t.Fatalf("hello re-encodes differently")
			}
		case FrameHelloAck:
			if h, err := DecodeHelloReply(fr.Payload); err == nil && !bytes.Equal(EncodeHelloReply(h), fr.Payload) {
				t.Fatalf("hello reply re-encodes differently")
			}
		case FrameRequest:
			if r, err := DecodeRequest(fr.Payload); err == nil && !bytes.Equal(EncodeRequest(r), fr.Payload) {
				t.Fatalf("request re-encodes differently")
			}
		case FrameResponse:
			if r, err := DecodeResponse(fr.Payload); err == nil && !bytes.Equal(EncodeResponse(r), fr.Payload) {
				t.Fatalf("response re-encodes differently")
			}
		case FrameEnd:
			if re, err := DecodeEnd(fr.Payload); err == nil && !bytes.Equal(EncodeEnd(re), fr.Payload) {
				t.Fatalf("end re-encodes differently")
			}
		case FrameWindow:
			if n, err := DecodeWindow(fr.Payload); err == nil && !bytes.Equal(EncodeWindow(n), fr.Payload) {
				t.Fatalf("window re-encodes differently")
			}
		}
	})
}
