package replica

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/snapferry/snapferry/transfer/wire"
)

// Limits the far side enforces on what a client asks for.
const (
	MinBlockSize = 64 << 10
	MaxBlockSize = 16 << 20
)

// beginArgs names the set (a folder below the served root) an update covers; it is the
// argument of OpRepBegin, OpRepCommit and OpRepAbort.
type beginArgs struct{ Set string }

func (a beginArgs) encode() []byte {
	var e wire.Encoder
	e.String(a.Set)
	return e.B
}

func decodeBeginArgs(p []byte) (beginArgs, error) {
	d := wire.NewDecoder(p)
	a := beginArgs{Set: d.String()}
	return a, d.Finish()
}

// fileArgs is the argument of OpRepHashes (Size and Mode unused), OpRepWrite and OpRepPut.
type fileArgs struct {
	Set, Name string
	BlockSize int64
	Size      int64  // the size the file must have after the update
	Mode      uint32 // permission bits for a file that is created
}

func (a fileArgs) encode() []byte {
	var e wire.Encoder
	e.String(a.Set)
	e.String(a.Name)
	e.Uvarint(uint64(a.BlockSize))
	e.Uvarint(uint64(a.Size))
	e.Uvarint(uint64(a.Mode))
	return e.B
}

func decodeFileArgs(p []byte) (fileArgs, error) {
	d := wire.NewDecoder(p)
	a := fileArgs{Set: d.String(), Name: d.String(), BlockSize: int64(d.Uvarint()), Size: int64(d.Uvarint()), Mode: d.Uint32()}
	if err := d.Finish(); err != nil {
		return a, err
	}
	if a.BlockSize < MinBlockSize || a.BlockSize > MaxBlockSize {
		return a, fmt.Errorf("block size %d out of range %d..%d", a.BlockSize, MinBlockSize, MaxBlockSize)
	}
	if a.Size < 0 || a.Size > 1<<50 {
		return a, fmt.Errorf("file size %d out of range", a.Size)
	}
	a.Mode &= 0o777
	return a, nil
}

// hashesHeader is the result body of OpRepHashes; when the file exists, Count fast hashes of
// FastSize bytes (seeded with Seed) follow as the streamed body, block 0 first.
type hashesHeader struct {
	Exists bool
	Size   int64
	Count  int64
	Seed   uint64
}

func (h hashesHeader) encode() []byte {
	var e wire.Encoder
	e.Bool(h.Exists)
	e.Uvarint(uint64(h.Size))
	e.Uvarint(uint64(h.Count))
	e.Uvarint(h.Seed)
	return e.B
}

func decodeHashesHeader(p []byte) (hashesHeader, error) {
	d := wire.NewDecoder(p)
	h := hashesHeader{Exists: d.Bool(), Size: int64(d.Uvarint()), Count: int64(d.Uvarint()), Seed: d.Uvarint()}
	if err := d.Finish(); err != nil {
		return h, err
	}
	if h.Size < 0 || h.Count < 0 || h.Count > 1<<40 {
		return h, fmt.Errorf("%w: hashes header %+v", wire.ErrMalformed, h)
	}
	return h, nil
}

// Block record kinds in the body of OpRepWrite.
const (
	recZstd = 1 // hash, zstd frame of the block
	recRaw  = 2 // hash, the block as is (did not compress)
	recZero = 3 // the block is all zeros: punch a hole
	recS2   = 4 // hash, S2 block of the block (--compression=fast)
)

// record is one changed block in an OpRepWrite body: kind, block index (uvarint) and, for data
// kinds, the strong (BLAKE3) hash of the block and the length-prefixed payload.
type record struct {
	kind    byte
	index   int64
	hash    [StrongSize]byte
	payload []byte
}

// appendRecordHead appends everything of r but its payload, so a sender can write the payload
// from where it lies.
func appendRecordHead(b []byte, r record) []byte {
	b = append(b, r.kind)
	b = binary.AppendUvarint(b, uint64(r.index))
	if r.kind == recZero {
		return b
	}
	b = append(b, r.hash[:]...)
	return binary.AppendUvarint(b, uint64(len(r.payload)))
}

// readRecord reads one record into buf (reused); io.EOF is the clean end of the body.
func readRecord(br *bufio.Reader, maxPayload int, buf []byte) (record, []byte, error) {
	kind, err := br.ReadByte()
	if err != nil {
		return record{}, buf, err
	}
	idx, err := binary.ReadUvarint(br)
	if err != nil {
		return record{}, buf, unexpected(err)
	}
	r := record{kind: kind, index: int64(idx)}
	switch kind {
	case recZero:
		return r, buf, nil
	case recZstd, recRaw, recS2:
	default:
		return record{}, buf, fmt.Errorf("%w: block record kind %d", wire.ErrMalformed, kind)
	}
	if _, err := io.ReadFull(br, r.hash[:]); err != nil {
		return record{}, buf, unexpected(err)
	}
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return record{}, buf, unexpected(err)
	}
	if n > uint64(maxPayload) {
		return record{}, buf, fmt.Errorf("%w: block record of %d bytes exceeds %d", wire.ErrMalformed, n, maxPayload)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n, maxPayload)
	}
	r.payload = buf[:n]
	if _, err := io.ReadFull(br, r.payload); err != nil {
		return record{}, buf, unexpected(err)
	}
	return r, buf, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// blockCount is the number of blocks of a file of size bytes.
func blockCount(size, bs int64) int64 { return (size + bs - 1) / bs }

// blockLen is the length of block i of a file of size bytes.
func blockLen(i, size, bs int64) int { return int(min(bs, size-i*bs)) }

// Mark identifies one replica file as an update left it: its size, its mtime on the far side
// and the seed of its hashes. Any change to the file (the copy started on the far side, edited,
// replaced, rolled forward by another run) changes its mtime, and a rebuilt sidecar has a new
// seed; so a mark equal to the one an update reported means the far file is still exactly what
// that update wrote. OpRepWrite answers with the mark of the file it wrote; OpRepMark reads it.
type Mark struct {
	Exists bool   `json:"exists"`
	Size   int64  `json:"size"`
	Mtime  int64  `json:"mtime_ns"`
	Seed   uint64 `json:"seed"`
}

func (m Mark) encode() []byte {
	var e wire.Encoder
	e.Bool(m.Exists)
	e.Uvarint(uint64(m.Size))
	e.Varint(m.Mtime)
	e.Uvarint(m.Seed)
	return e.B
}

func decodeMark(p []byte) (Mark, error) {
	d := wire.NewDecoder(p)
	m := Mark{Exists: d.Bool(), Size: int64(d.Uvarint()), Mtime: d.Varint(), Seed: d.Uvarint()}
	if err := d.Finish(); err != nil {
		return Mark{}, err
	}
	if m.Size < 0 {
		return Mark{}, fmt.Errorf("%w: replica mark %+v", wire.ErrMalformed, m)
	}
	return m, nil
}
