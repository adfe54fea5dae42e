package tape

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// RecordType says what a record carries. The numbers are part of the media format.
type RecordType uint8

const (
	RecLabel     RecordType = 1 // the volume label (file 0, record 0)
	RecSetHeader RecordType = 2 // start (or continuation on a new volume) of a save set's stream
	RecData      RecordType = 3 // a piece of a save set's data stream
	RecTrailer   RecordType = 4 // end of a save set: totals and checksum
	RecCatalog   RecordType = 5 // a piece of the catalog copy written at the end of a session
)

func (t RecordType) String() string {
	switch t {
	case RecLabel:
		return "label"
	case RecSetHeader:
		return "set header"
	case RecData:
		return "data"
	case RecTrailer:
		return "set trailer"
	case RecCatalog:
		return "catalog"
	}
	return fmt.Sprintf("record type %d", uint8(t))
}

// Record layout (little endian, docs/tape-format.md):
//
//	0  "SFT1"         magic
//	4  u8  type
//	5  u8  flags      (reserved, 0)
//	6  u16 version    (1)
//	8  u32 stream     (0 for label and catalog records)
//	12 u32 length     payload bytes that follow the header
//	16 u64 sequence   record number within its save set (all parts) or catalog copy
//	24 u32 crc32c     of the whole record with this field zero, padding included
//	28 u32 reserved
//	32 payload, then zero padding to the volume's block size
const (
	recordMagic   = "SFT1"
	recordVersion = 1
	RecordHeader  = 32

	DefaultBlockSize = 256 << 10
	MinBlockSize     = 4 << 10
	MaxBlockSize     = 4 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrChecksum is wrapped when a record's checksum does not match its contents.
var ErrChecksum = errors.New("bad record checksum")

// ErrNotFormat is wrapped when a record is not a snapferry tape record at all.
var ErrNotFormat = errors.New("not a snapferry tape record")

// Record is one decoded tape record.
type Record struct {
	Type    RecordType
	Stream  uint32
	Seq     uint64
	Payload []byte // aliases the buffer it was decoded from
}

// encodeRecord fills buf (exactly one block) with r, padding with zeros.
func encodeRecord(buf []byte, r Record) error {
	if len(r.Payload) > len(buf)-RecordHeader {
		return fmt.Errorf("encode %s record: %d payload bytes exceed the block's %d", r.Type, len(r.Payload), len(buf)-RecordHeader)
	}
	copy(buf, recordMagic)
	buf[4] = byte(r.Type)
	buf[5] = 0
	binary.LittleEndian.PutUint16(buf[6:], recordVersion)
	binary.LittleEndian.PutUint32(buf[8:], r.Stream)
	binary.LittleEndian.PutUint32(buf[12:], uint32(len(r.Payload)))
	binary.LittleEndian.PutUint64(buf[16:], r.Seq)
	binary.LittleEndian.PutUint32(buf[24:], 0)
	binary.LittleEndian.PutUint32(buf[28:], 0)
	n := copy(buf[RecordHeader:], r.Payload)
	clear(buf[RecordHeader+n:])
	binary.LittleEndian.PutUint32(buf[24:], crc32.Checksum(buf, castagnoli))
	return nil
}

// decodeRecord checks and decodes one record as read from the tape (its length is the block
// size). The payload aliases b.
func decodeRecord(b []byte) (Record, error) {
	if len(b) < RecordHeader || string(b[:4]) != recordMagic {
		return Record{}, ErrNotFormat
	}
	want := binary.LittleEndian.Uint32(b[24:])
	binary.LittleEndian.PutUint32(b[24:], 0)
	got := crc32.Checksum(b, castagnoli)
	binary.LittleEndian.PutUint32(b[24:], want)
	if got != want {
		return Record{}, fmt.Errorf("%w (stored %08x, computed %08x)", ErrChecksum, want, got)
	}
	if v := binary.LittleEndian.Uint16(b[6:]); v != recordVersion {
		return Record{}, fmt.Errorf("record format version %d is newer than this build reads", v)
	}
	n := binary.LittleEndian.Uint32(b[12:])
	if int(n) > len(b)-RecordHeader {
		return Record{}, fmt.Errorf("%w: payload length %d exceeds the record", ErrNotFormat, n)
	}
	return Record{
		Type:    RecordType(b[4]),
		Stream:  binary.LittleEndian.Uint32(b[8:]),
		Seq:     binary.LittleEndian.Uint64(b[16:]),
		Payload: b[RecordHeader : RecordHeader+int(n)],
	}, nil
}

// RecordError locates a damaged or unexpected record on the media.
type RecordError struct {
	Volume string
	File   int64
	Record int64
	Err    error
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("volume %s file %d record %d: %v", e.Volume, e.File, e.Record, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }
