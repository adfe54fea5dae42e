package nbd

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// request is one transmission request from a client.
type request struct {
	flags  uint16
	typ    uint16
	cookie uint64
	offset uint64
	length uint32
}

// parseRequest decodes a 28-byte request header.
func parseRequest(b []byte) (request, error) {
	if len(b) != 28 {
		return request{}, fmt.Errorf("request header of %d bytes", len(b))
	}
	if m := binary.BigEndian.Uint32(b); m != magicRequest {
		return request{}, fmt.Errorf("request magic %#x, want %#x", m, magicRequest)
	}
	return request{
		flags:  binary.BigEndian.Uint16(b[4:]),
		typ:    binary.BigEndian.Uint16(b[6:]),
		cookie: binary.BigEndian.Uint64(b[8:]),
		offset: binary.BigEndian.Uint64(b[16:]),
		length: binary.BigEndian.Uint32(b[24:]),
	}, nil
}

// parseOption decodes the 16-byte header of a client option: its code and payload length.
func parseOption(b []byte) (uint32, uint32, error) {
	if len(b) != 16 {
		return 0, 0, fmt.Errorf("option header of %d bytes", len(b))
	}
	if m := binary.BigEndian.Uint64(b); m != magicOpt {
		return 0, 0, fmt.Errorf("option magic %#x, want %#x", m, magicOpt)
	}
	n := binary.BigEndian.Uint32(b[12:])
	if n > maxOptReplyLen {
		return 0, 0, fmt.Errorf("option of %d bytes (at most %d)", n, maxOptReplyLen)
	}
	return binary.BigEndian.Uint32(b[8:]), n, nil
}

// parseGoRequest decodes the payload of NBD_OPT_GO / NBD_OPT_INFO: the export name and the
// information types asked for.
func parseGoRequest(b []byte) (string, []uint16, error) {
	if len(b) < 6 {
		return "", nil, errors.New("NBD_OPT_GO payload too short")
	}
	n := binary.BigEndian.Uint32(b)
	if n > maxStringLen || uint64(len(b)) < 4+uint64(n)+2 {
		return "", nil, fmt.Errorf("NBD_OPT_GO export name of %d bytes in %d", n, len(b))
	}
	name := string(b[4 : 4+n])
	rest := b[4+n:]
	k := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if len(rest) != 2*k {
		return "", nil, fmt.Errorf("NBD_OPT_GO asks %d infos in %d bytes", k, len(rest))
	}
	infos := make([]uint16, k)
	for i := range infos {
		infos[i] = binary.BigEndian.Uint16(rest[2*i:])
	}
	return name, infos, nil
}
