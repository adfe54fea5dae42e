package wire

import (
	"encoding/binary"
	"fmt"
)

// Limits on decoded fields. They bound what one message can make a decoder allocate.
const (
	MaxString = 4096 // names, messages, versions
	MaxList   = 256  // capabilities and similar small lists
)

// Encoder appends protocol fields to a byte slice. Integers are unsigned varints, strings and
// byte strings a varint length then the bytes, bools one byte 0 or 1.
type Encoder struct{ B []byte }

// Uvarint appends v.
func (e *Encoder) Uvarint(v uint64) { e.B = binary.AppendUvarint(e.B, v) }

// Varint appends a signed v (zig-zag), used for offsets where -1 has a meaning.
func (e *Encoder) Varint(v int64) { e.B = binary.AppendVarint(e.B, v) }

// Bool appends b.
func (e *Encoder) Bool(b bool) {
	if b {
		e.B = append(e.B, 1)
	} else {
		e.B = append(e.B, 0)
	}
}

// Bytes appends a length-prefixed byte string.
func (e *Encoder) Bytes(p []byte) {
	e.Uvarint(uint64(len(p)))
	e.B = append(e.B, p...)
}

// String appends a length-prefixed string.
func (e *Encoder) String(s string) {
	e.Uvarint(uint64(len(s)))
	e.B = append(e.B, s...)
}

// Strings appends a counted list of strings.
func (e *Encoder) Strings(ss []string) {
	e.Uvarint(uint64(len(ss)))
	for _, s := range ss {
		e.String(s)
	}
}

// Decoder reads protocol fields strictly: overlong varints, short input, over-limit lengths and
// (through Finish) trailing bytes are errors. The first error sticks and later reads return zero
// values, so a message decoder checks Finish once at the end.
type Decoder struct {
	b   []byte
	err error
}

// NewDecoder decodes b.
func NewDecoder(b []byte) *Decoder { return &Decoder{b: b} }

func (d *Decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
}

// Uvarint reads an unsigned varint.
func (d *Decoder) Uvarint() uint64 { return readVarint(d, binary.Uvarint, "unsigned") }

// Varint reads a signed (zig-zag) varint.
func (d *Decoder) Varint() int64 { return readVarint(d, binary.Varint, "signed") }

func readVarint[T uint64 | int64](d *Decoder, decode func([]byte) (T, int), what string) T {
	if d.err != nil {
		return 0
	}
	v, n := decode(d.b)
	if n <= 0 {
		d.fail("bad %s varint", what)
		return 0
	}
	// Reject non-minimal encodings so every value has exactly one encoding.
	if n > 1 && d.b[n-1] == 0 {
		d.fail("non-minimal varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// Uint32 reads a varint that must fit 32 bits.
func (d *Decoder) Uint32() uint32 {
	v := d.Uvarint()
	if v > 1<<32-1 {
		d.fail("value %d does not fit 32 bits", v)
		return 0
	}
	return uint32(v)
}

// Bool reads a bool; any byte but 0 or 1 is an error.
func (d *Decoder) Bool() bool {
	if d.err != nil {
		return false
	}
	if len(d.b) < 1 {
		d.fail("missing bool")
		return false
	}
	c := d.b[0]
	d.b = d.b[1:]
	if c > 1 {
		d.fail("bool byte %d", c)
		return false
	}
	return c == 1
}

// Bytes reads a byte string of at most max bytes. The result aliases the input.
func (d *Decoder) Bytes(max int) []byte {
	n := d.Uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(max) {
		d.fail("field of %d bytes exceeds the limit of %d", n, max)
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("field of %d bytes but only %d left", n, len(d.b))
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

// String reads a string of at most MaxString bytes.
func (d *Decoder) String() string { return string(d.Bytes(MaxString)) }

// Strings reads a counted list of at most MaxList strings.
func (d *Decoder) Strings() []string {
	n := d.Uvarint()
	if d.err != nil {
		return nil
	}
	if n > MaxList {
		d.fail("list of %d entries exceeds the limit of %d", n, MaxList)
		return nil
	}
	out := make([]string, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		out = append(out, d.String())
	}
	return out
}

// Rest returns the undecoded bytes and consumes them.
func (d *Decoder) Rest() []byte {
	p := d.b
	d.b = nil
	return p
}

// Err returns the first error so far.
func (d *Decoder) Err() error { return d.err }

// Finish returns the first error, or an error if bytes are left over.
func (d *Decoder) Finish() error {
	if d.err == nil && len(d.b) > 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return d.err
}
