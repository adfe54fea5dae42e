package nbd

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Extent is one run of a block status reply: Length bytes from Offset share Flags.
type Extent struct {
	Offset uint64
	Length uint64
	Flags  uint32
}

// optReply is the fixed header of an option reply.
type optReply struct {
	opt, typ, length uint32
}

// parseOptReply decodes the 20-byte header of an option reply.
func parseOptReply(b []byte) (optReply, error) {
	if len(b) != 20 {
		return optReply{}, fmt.Errorf("option reply header of %d bytes", len(b))
	}
	if m := binary.BigEndian.Uint64(b); m != magicOptReply {
		return optReply{}, fmt.Errorf("option reply magic %#x, want %#x", m, magicOptReply)
	}
	r := optReply{opt: binary.BigEndian.Uint32(b[8:]), typ: binary.BigEndian.Uint32(b[12:]), length: binary.BigEndian.Uint32(b[16:])}
	if r.length > maxOptReplyLen {
		return optReply{}, fmt.Errorf("option reply of %d bytes (at most %d)", r.length, maxOptReplyLen)
	}
	return r, nil
}

// exportInfo is what NBD_INFO_EXPORT and NBD_INFO_BLOCK_SIZE tell about an export.
type exportInfo struct {
	size      uint64
	flags     uint16
	minBlock  uint32
	prefBlock uint32
	maxBlock  uint32
}

// parseInfo decodes the payload of an NBD_REP_INFO into info; unknown info types are ignored as
// the protocol asks.
func parseInfo(b []byte, info *exportInfo) error {
	if len(b) < 2 {
		return errors.New("info reply shorter than its type")
	}
	switch binary.BigEndian.Uint16(b) {
	case infoExport:
		if len(b) != 12 {
			return fmt.Errorf("NBD_INFO_EXPORT of %d bytes, want 12", len(b))
		}
		info.size = binary.BigEndian.Uint64(b[2:])
		info.flags = binary.BigEndian.Uint16(b[10:])
		if info.size > 1<<62 {
			return fmt.Errorf("export size %d is not plausible", info.size)
		}
	case infoBlockSize:
		if len(b) != 14 {
			return fmt.Errorf("NBD_INFO_BLOCK_SIZE of %d bytes, want 14", len(b))
		}
		info.minBlock = binary.BigEndian.Uint32(b[2:])
		info.prefBlock = binary.BigEndian.Uint32(b[6:])
		info.maxBlock = binary.BigEndian.Uint32(b[10:])
	}
	return nil
}

// parseMetaContext decodes an NBD_REP_META_CONTEXT payload: the id and name of a context.
func parseMetaContext(b []byte) (uint32, string, error) {
	if len(b) < 4 || len(b)-4 > maxStringLen {
		return 0, "", fmt.Errorf("meta context reply of %d bytes", len(b))
	}
	return binary.BigEndian.Uint32(b), string(b[4:]), nil
}

// replyHeader is a transmission reply: a simple reply (structured=false: errno set, no length,
// read data follows) or one structured reply chunk.
type replyHeader struct {
	structured bool
	errno      uint32 // simple replies
	flags      uint16 // structured
	typ        uint16
	cookie     uint64
	length     uint32
}

// parseReplyHeader decodes a reply header: b holds 16 bytes for a simple reply or 20 for a
// structured chunk, magic first (replyHeaderLen says how many to read after the magic).
func parseReplyHeader(b []byte) (replyHeader, error) {
	if len(b) < 4 {
		return replyHeader{}, errors.New("reply shorter than its magic")
	}
	switch m := binary.BigEndian.Uint32(b); m {
	case magicSimple:
		if len(b) != 16 {
			return replyHeader{}, fmt.Errorf("simple reply header of %d bytes", len(b))
		}
		return replyHeader{errno: binary.BigEndian.Uint32(b[4:]), cookie: binary.BigEndian.Uint64(b[8:])}, nil
	case magicStructured:
		if len(b) != 20 {
			return replyHeader{}, fmt.Errorf("structured reply header of %d bytes", len(b))
		}
		h := replyHeader{
			structured: true,
			flags:      binary.BigEndian.Uint16(b[4:]),
			typ:        binary.BigEndian.Uint16(b[6:]),
			cookie:     binary.BigEndian.Uint64(b[8:]),
			length:     binary.BigEndian.Uint32(b[16:]),
		}
		if h.length > maxChunkLen {
			return replyHeader{}, fmt.Errorf("reply chunk of %d bytes (at most %d)", h.length, maxChunkLen)
		}
		return h, nil
	default:
		return replyHeader{}, fmt.Errorf("reply magic %#x is neither simple nor structured", m)
	}
}

// replyHeaderLen is the length of the header whose 4-byte magic is m, or 0 for an unknown one.
func replyHeaderLen(m uint32) int {
	switch m {
	case magicSimple:
		return 16
	case magicStructured:
		return 20
	}
	return 0
}

// parseOffsetData splits an NBD_REPLY_TYPE_OFFSET_DATA payload into its offset and data.
func parseOffsetData(b []byte) (uint64, []byte, error) {
	if len(b) < 9 {
		return 0, nil, fmt.Errorf("offset-data chunk of %d bytes carries no data", len(b))
	}
	return binary.BigEndian.Uint64(b), b[8:], nil
}

// parseOffsetHole decodes an NBD_REPLY_TYPE_OFFSET_HOLE payload.
func parseOffsetHole(b []byte) (uint64, uint32, error) {
	if len(b) != 12 {
		return 0, 0, fmt.Errorf("offset-hole chunk of %d bytes, want 12", len(b))
	}
	n := binary.BigEndian.Uint32(b[8:])
	if n == 0 {
		return 0, 0, errors.New("offset-hole chunk of length 0")
	}
	return binary.BigEndian.Uint64(b), n, nil
}

// parseBlockStatus decodes an NBD_REPLY_TYPE_BLOCK_STATUS payload for a request at offset: the
// context id and its extents with absolute offsets. A zero-length extent is a protocol error.
func parseBlockStatus(b []byte, offset uint64) (uint32, []Extent, error) {
	if len(b) < 12 || (len(b)-4)%8 != 0 {
		return 0, nil, fmt.Errorf("block status chunk of %d bytes", len(b))
	}
	id := binary.BigEndian.Uint32(b)
	out := make([]Extent, 0, (len(b)-4)/8)
	off := offset
	for p := 4; p < len(b); p += 8 {
		n := uint64(binary.BigEndian.Uint32(b[p:]))
		if n == 0 {
			return 0, nil, errors.New("block status extent of length 0")
		}
		out = append(out, Extent{Offset: off, Length: n, Flags: binary.BigEndian.Uint32(b[p+4:])})
		off += n
	}
	return id, out, nil
}

// parseErrorChunk decodes NBD_REPLY_TYPE_ERROR and _ERROR_OFFSET payloads into an error.
func parseErrorChunk(typ uint16, b []byte) error {
	if len(b) < 6 {
		return fmt.Errorf("error chunk of %d bytes", len(b))
	}
	errno := binary.BigEndian.Uint32(b)
	mlen := int(binary.BigEndian.Uint16(b[4:]))
	rest := b[6:]
	if mlen > len(rest) {
		return fmt.Errorf("error chunk message of %d bytes in %d", mlen, len(rest))
	}
	e := &ServerError{Errno: errno, Message: string(rest[:mlen])}
	rest = rest[mlen:]
	if typ == chunkErrorOffset {
		if len(rest) != 8 {
			return fmt.Errorf("error-offset chunk with %d bytes for its offset", len(rest))
		}
		e.Offset, e.HasOffset = binary.BigEndian.Uint64(rest), true
	}
	return e
}

// ServerError is an error the NBD server reported for a request.
type ServerError struct {
	Errno     uint32
	Message   string
	Offset    uint64
	HasOffset bool
}

func (e *ServerError) Error() string {
	s := fmt.Sprintf("NBD server error %d (%s)", e.Errno, errnoName(e.Errno))
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.HasOffset {
		s += fmt.Sprintf(" at offset %d", e.Offset)
	}
	return s
}

func errnoName(e uint32) string {
	switch e {
	case errPerm:
		return "EPERM"
	case errIO:
		return "EIO"
	case errNoMem:
		return "ENOMEM"
	case errInvalid:
		return "EINVAL"
	case errNoSpace:
		return "ENOSPC"
	case errOverflow:
		return "EOVERFLOW"
	case errNotSup:
		return "ENOTSUP"
	case errShutdown:
		return "ESHUTDOWN"
	}
	return "unknown"
}
