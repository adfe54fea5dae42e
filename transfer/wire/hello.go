package wire

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// Magic opens the byte stream in both directions. It lets a client tell "the far side is not
// snapferry serve" (a shell error, a login banner) from a protocol bug, and say what it got.
const Magic = "SNAPFERRY-WIRE\n"

// Protocol versions this code speaks. A peer picks the highest version both ranges share.
const (
	MinVersion = 1
	MaxVersion = 1
)

// Defaults for the flow-control parameters the server announces.
const (
	DefaultWindow     = 1 << 20 // bytes a sender may have unacknowledged per stream and direction
	DefaultMaxStreams = 16      // requests a client may have open at once
	ChunkSize         = 128 << 10
	minWindow         = 64 << 10
	maxWindow         = 64 << 20
	maxStreamsLimit   = 1024
)

// Hello is what the client sends first.
type Hello struct {
	MinVersion, MaxVersion uint32
	Program                string // the client's program version, for messages and logs
	Caps                   []string
}

// HelloReply is the server's answer. Version 0 means refused, with Error saying why.
type HelloReply struct {
	Version    uint32
	Error      string
	Program    string
	Caps       []string
	Root       string // the server's root folder, for messages
	AppendOnly bool
	MaxStreams uint32
	Window     uint32
}

// HasCap reports whether the server announced capability c.
func (h HelloReply) HasCap(c string) bool {
	for _, x := range h.Caps {
		if x == c {
			return true
		}
	}
	return false
}

// EncodeHello encodes h.
func EncodeHello(h Hello) []byte {
	var e Encoder
	e.Uvarint(uint64(h.MinVersion))
	e.Uvarint(uint64(h.MaxVersion))
	e.String(h.Program)
	e.Strings(h.Caps)
	return e.B
}

// DecodeHello decodes a Hello payload.
func DecodeHello(p []byte) (Hello, error) {
	d := NewDecoder(p)
	h := Hello{MinVersion: d.Uint32(), MaxVersion: d.Uint32(), Program: d.String(), Caps: d.Strings()}
	if err := d.Finish(); err != nil {
		return Hello{}, fmt.Errorf("decode hello: %w", err)
	}
	if h.MinVersion == 0 || h.MinVersion > h.MaxVersion {
		return Hello{}, fmt.Errorf("decode hello: %w: version range %d..%d", ErrMalformed, h.MinVersion, h.MaxVersion)
	}
	return h, nil
}

// EncodeHelloReply encodes h.
func EncodeHelloReply(h HelloReply) []byte {
	var e Encoder
	e.Uvarint(uint64(h.Version))
	if h.Version == 0 {
		e.String(h.Error)
		return e.B
	}
	e.String(h.Program)
	e.Strings(h.Caps)
	e.String(h.Root)
	e.Bool(h.AppendOnly)
	e.Uvarint(uint64(h.MaxStreams))
	e.Uvarint(uint64(h.Window))
	return e.B
}

// DecodeHelloReply decodes a HelloReply payload and checks its flow-control parameters.
func DecodeHelloReply(p []byte) (HelloReply, error) {
	d := NewDecoder(p)
	h := HelloReply{Version: d.Uint32()}
	if h.Version == 0 {
		h.Error = d.String()
	} else {
		h.Program, h.Caps, h.Root, h.AppendOnly = d.String(), d.Strings(), d.String(), d.Bool()
		h.MaxStreams, h.Window = d.Uint32(), d.Uint32()
	}
	if err := d.Finish(); err != nil {
		return HelloReply{}, fmt.Errorf("decode hello reply: %w", err)
	}
	if h.Version != 0 && (h.MaxStreams == 0 || h.MaxStreams > maxStreamsLimit || h.Window < minWindow || h.Window > maxWindow) {
		return HelloReply{}, fmt.Errorf("decode hello reply: %w: max streams %d, window %d out of range", ErrMalformed, h.MaxStreams, h.Window)
	}
	return h, nil
}

// maxNoise is how much a client skips looking for the magic: login banners and shell noise
// printed before the server starts are tolerated, anything longer is not a snapferry server.
const maxNoise = 8 << 10

// readMagic consumes bytes until Magic. Whatever came before it is returned in the error when
// the magic never shows, so the user sees e.g. "sh: snapferry: not found".
func readMagic(r *bufio.Reader) error {
	var seen []byte
	for len(seen) < maxNoise+len(Magic) {
		c, err := r.ReadByte()
		if err != nil {
			if len(seen) > 0 {
				return fmt.Errorf("peer is not a snapferry wire server: it said %q then %w", firstLines(seen), err)
			}
			if err == io.EOF {
				return fmt.Errorf("peer closed the connection before the handshake: %w", io.ErrUnexpectedEOF)
			}
			return fmt.Errorf("read handshake: %w", err)
		}
		seen = append(seen, c)
		if bytes.HasSuffix(seen, []byte(Magic)) {
			return nil
		}
	}
	return fmt.Errorf("peer is not a snapferry wire server: it said %q", firstLines(seen))
}

func firstLines(b []byte) string {
	const max = 300
	if len(b) > max {
		b = b[:max]
	}
	return string(bytes.TrimSpace(b))
}
