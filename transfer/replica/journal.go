package replica

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	"github.com/snapferry/snapferry/transfer/wire"
)

// Undo journal: a sequence of records, each
//
//	length  uint32 little endian: bytes of type and body
//	type    1 byte
//	body    fields encoded as in the wire package (varints, length-prefixed strings)
//	crc     uint32 little endian, CRC-32C of type and body
//
// A record whose length, crc or body does not check out ends the journal: it is the torn tail of
// a crash during an append, and the change it announced was never made (every change waits for
// its record to be fsynced).
const (
	jHeader = 'H' // magic, set
	jFile   = 'F' // file: name, existed, old size, old mtime, old mode
	jBlock  = 'B' // old contents: file ordinal, offset, zero, data
	jSmall  = 'S' // small file replaced: name, existed, name of the saved copy
	jCommit = 'C' // the update is complete: roll forward, never back

	journalMagic = "SNAPFERRY-UNDO1"
	maxRecord    = MaxBlockSize + 4096
)

// castagnoli is the CRC-32C table; the standard library builds it once and caches it.
func castagnoli() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) }

type journalWriter struct {
	f  *os.File
	bw *bufio.Writer
}

func createJournal(path, set string) (*journalWriter, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC|noFollow, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create undo journal %s: %w", path, err)
	}
	j := &journalWriter{f: f, bw: bufio.NewWriterSize(f, 1<<20)}
	var e wire.Encoder
	e.String(journalMagic)
	e.String(set)
	if err := j.append(jHeader, e.B); err != nil {
		f.Close()
		return nil, err
	}
	if err := j.sync(); err != nil {
		f.Close()
		return nil, err
	}
	return j, nil
}

func (j *journalWriter) append(typ byte, body []byte) error {
	var hdr [5]byte
	binary.LittleEndian.PutUint32(hdr[:4], uint32(1+len(body)))
	hdr[4] = typ
	crc := crc32.Update(crc32.Update(0, castagnoli(), hdr[4:5]), castagnoli(), body)
	var tail [4]byte
	binary.LittleEndian.PutUint32(tail[:], crc)
	for _, p := range [][]byte{hdr[:], body, tail[:]} {
		if _, err := j.bw.Write(p); err != nil {
			return fmt.Errorf("append to undo journal %s: %w", j.f.Name(), err)
		}
	}
	return nil
}

// sync makes every appended record durable.
func (j *journalWriter) sync() error {
	if err := j.bw.Flush(); err != nil {
		return fmt.Errorf("write undo journal %s: %w", j.f.Name(), err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("fsync undo journal %s: %w", j.f.Name(), err)
	}
	return nil
}

func (j *journalWriter) close() error { return j.f.Close() }

// Journal record bodies.

type fileRec struct {
	name          string // relative to the served root
	existed       bool
	size, mtimeNs int64
	mode          uint32
}

func (r fileRec) encode() []byte {
	var e wire.Encoder
	e.String(r.name)
	e.Bool(r.existed)
	e.Uvarint(uint64(r.size))
	e.Varint(r.mtimeNs)
	e.Uvarint(uint64(r.mode))
	return e.B
}

func decodeFileRec(p []byte) (fileRec, error) {
	d := wire.NewDecoder(p)
	r := fileRec{name: d.String(), existed: d.Bool(), size: int64(d.Uvarint()), mtimeNs: d.Varint(), mode: d.Uint32()}
	return r, d.Finish()
}

type blockRec struct {
	file int64 // ordinal of the file's jFile record
	off  int64
	n    int64
	zero bool
	data []byte
}

func appendBlockRec(b []byte, r blockRec) []byte {
	e := wire.Encoder{B: b}
	e.Uvarint(uint64(r.file))
	e.Uvarint(uint64(r.off))
	e.Uvarint(uint64(r.n))
	e.Bool(r.zero)
	if !r.zero {
		e.B = append(e.B, r.data...)
	}
	return e.B
}

func decodeBlockRec(p []byte) (blockRec, error) {
	d := wire.NewDecoder(p)
	r := blockRec{file: int64(d.Uvarint()), off: int64(d.Uvarint()), n: int64(d.Uvarint()), zero: d.Bool()}
	if !r.zero {
		r.data = d.Rest()
	}
	if err := d.Finish(); err != nil {
		return r, err
	}
	if r.off < 0 || r.n < 0 || (!r.zero && int64(len(r.data)) != r.n) {
		return r, fmt.Errorf("%w: block record of %d bytes at %d with %d bytes of data", wire.ErrMalformed, r.n, r.off, len(r.data))
	}
	return r, nil
}

type smallRec struct {
	name    string
	existed bool
	copy    string // file name of the saved old version in the undo folder
	mode    uint32
}

func (r smallRec) encode() []byte {
	var e wire.Encoder
	e.String(r.name)
	e.Bool(r.existed)
	e.String(r.copy)
	e.Uvarint(uint64(r.mode))
	return e.B
}

func decodeSmallRec(p []byte) (smallRec, error) {
	d := wire.NewDecoder(p)
	r := smallRec{name: d.String(), existed: d.Bool(), copy: d.String(), mode: d.Uint32()}
	return r, d.Finish()
}

// journalReader reads records until the end or the first record that does not check out.
type journalReader struct {
	br  *bufio.Reader
	buf []byte
	// torn is set when reading stopped at a damaged record rather than at the end.
	torn bool
}

func newJournalReader(r io.Reader) *journalReader {
	return &journalReader{br: bufio.NewReaderSize(r, 1<<20)}
}

// next returns the next record; ok is false at the end (clean or torn). The body is valid until
// the next call.
func (jr *journalReader) next() (typ byte, body []byte, ok bool) {
	var hdr [4]byte
	if _, err := io.ReadFull(jr.br, hdr[:]); err != nil {
		jr.torn = err != io.EOF
		return 0, nil, false
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n < 1 || n > maxRecord {
		jr.torn = true
		return 0, nil, false
	}
	if cap(jr.buf) < int(n)+4 {
		jr.buf = make([]byte, n+4)
	}
	b := jr.buf[:n+4]
	if _, err := io.ReadFull(jr.br, b); err != nil {
		jr.torn = true
		return 0, nil, false
	}
	if crc32.Checksum(b[:n], castagnoli()) != binary.LittleEndian.Uint32(b[n:]) {
		jr.torn = true
		return 0, nil, false
	}
	return b[0], b[1:n], true
}

// errNoHeader means the journal's first record is missing or damaged: the crash came while the
// journal was being created, before any change was made under it.
var errNoHeader = errors.New("undo journal has no valid header")

// readJournalHeader returns the set a journal covers.
func readJournalHeader(jr *journalReader) (string, error) {
	typ, body, ok := jr.next()
	if !ok || typ != jHeader {
		return "", errNoHeader
	}
	d := wire.NewDecoder(body)
	magic, set := d.String(), d.String()
	if err := d.Finish(); err != nil || magic != journalMagic {
		return "", fmt.Errorf("%w (not %s)", errNoHeader, journalMagic)
	}
	return set, nil
}
