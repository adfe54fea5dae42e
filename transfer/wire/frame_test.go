package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	frames := []Frame{
		{Type: FrameRequest, Stream: 7, Payload: EncodeRequest(Request{Op: OpLoad, Upload: true, Args: []byte{1, 2}})},
		{Type: FrameData, Stream: 1<<32 - 1, Payload: bytes.Repeat([]byte{9}, MaxPayload)},
		{Type: FrameEnd, Stream: 3},
		{Type: FrameWindow, Stream: 3, Payload: EncodeWindow(65536)},
	}
	var buf bytes.Buffer
	for _, f := range frames {
		if err := WriteFrame(&buf, f); err != nil {
			t.Fatal(err)
		}
	}
	br := bufio.NewReader(&buf)
	for _, want := range frames {
		got, err := ReadFrame(br)
		if err != nil {
			t.Fatal(err)
		}
		if got.Type != want.Type || got.Stream != want.Stream || !bytes.Equal(got.Payload, want.Payload) {
			t.Fatalf("got %s/%d/%d bytes, want %s/%d/%d", got.Type, got.Stream, len(got.Payload), want.Type, want.Stream, len(want.Payload))
		}
	}
	if _, err := ReadFrame(br); err != io.EOF {
		t.Fatalf("clean end: %v", err)
	}
}

func TestFrameDecoderRejects(t *testing.T) {
	big := AppendFrame(nil, Frame{Type: FrameData, Stream: 1})
	big[5], big[6], big[7], big[8] = 0xff, 0xff, 0xff, 0xff
	cases := map[string][]byte{
		"unknown type": {99, 0, 0, 0, 1, 0, 0, 0, 0},
		"zero type":    {0, 0, 0, 0, 1, 0, 0, 0, 0},
		"oversized":    big,
		"short":        {byte(FrameData), 0, 0},
		"truncated":    {byte(FrameData), 0, 0, 0, 1, 0, 0, 0, 5, 1, 2},
	}
	for name, b := range cases {
		if _, err := DecodeFrame(b); err == nil {
			t.Errorf("%s: decoded", name)
		} else if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v is not ErrMalformed", name, err)
		}
	}
	// A stream cut inside a frame is unexpected EOF, not a clean end.
	if _, err := ReadFrame(bufio.NewReader(bytes.NewReader(cases["truncated"]))); err != io.ErrUnexpectedEOF {
		t.Errorf("truncated stream: %v", err)
	}
}

func TestMessageDecodersAreStrict(t *testing.T) {
	h := Hello{MinVersion: 1, MaxVersion: 1, Program: "v1.2.3", Caps: []string{CapStore, CapReplica}}
	got, err := DecodeHello(EncodeHello(h))
	if err != nil || got.Program != h.Program || len(got.Caps) != 2 {
		t.Fatalf("hello round trip: %+v, %v", got, err)
	}
	if _, err := DecodeHello(append(EncodeHello(h), 0)); err == nil {
		t.Error("hello with a trailing byte decoded")
	}
	r := HelloReply{Version: 1, Program: "p", Root: "/r", AppendOnly: true, MaxStreams: 8, Window: 1 << 20}
	gr, err := DecodeHelloReply(EncodeHelloReply(r))
	if err != nil || !gr.AppendOnly || gr.Root != "/r" || gr.Window != 1<<20 {
		t.Fatalf("reply round trip: %+v, %v", gr, err)
	}
	r.Window = 1
	if _, err := DecodeHelloReply(EncodeHelloReply(r)); err == nil {
		t.Error("reply with a tiny window decoded")
	}
	if _, err := DecodeWindow(EncodeWindow(0)); err == nil {
		t.Error("zero window decoded")
	}
	if _, err := DecodeWindow([]byte{0x80, 0x00}); err == nil {
		t.Error("non-minimal varint decoded")
	}
	if _, err := DecodeResponse([]byte{byte(classMax + 1), 0}); err == nil {
		t.Error("unknown error class decoded")
	}
	if _, err := DecodeRequest([]byte{byte(OpSave), 0x80}); err == nil {
		t.Error("unknown request flag decoded")
	}
	var e Encoder
	e.Uvarint(MaxString + 1)
	if _, err := DecodeEnd(append([]byte{byte(ClassOther)}, e.B...)); err == nil {
		t.Error("over-long message decoded")
	}
}
