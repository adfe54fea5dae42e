package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/snapferry/snapferry/images/store"
)

// Argument and result encodings of the store ops. Both sides use these, so they live here.

// EncodeHandle encodes the argument of Save, Stat and Remove.
func EncodeHandle(h store.Handle) []byte {
	var e Encoder
	e.String(string(h.Kind))
	e.String(h.Name)
	return e.B
}

func decodeHandle(d *Decoder) store.Handle {
	return store.Handle{Kind: store.Kind(d.String()), Name: d.String()}
}

// DecodeHandle decodes a handle argument. It checks the encoding only; the server judges names.
func DecodeHandle(p []byte) (store.Handle, error) {
	d := NewDecoder(p)
	h := decodeHandle(d)
	return h, d.Finish()
}

// LoadArgs is the argument of OpLoad.
type LoadArgs struct {
	Handle         store.Handle
	Offset, Length int64
}

// EncodeLoadArgs encodes a.
func EncodeLoadArgs(a LoadArgs) []byte {
	e := Encoder{B: EncodeHandle(a.Handle)}
	e.Varint(a.Offset)
	e.Varint(a.Length)
	return e.B
}

// DecodeLoadArgs decodes an OpLoad argument; a negative offset is malformed.
func DecodeLoadArgs(p []byte) (LoadArgs, error) {
	d := NewDecoder(p)
	a := LoadArgs{Handle: decodeHandle(d), Offset: d.Varint(), Length: d.Varint()}
	if err := d.Finish(); err != nil {
		return LoadArgs{}, err
	}
	if a.Offset < 0 {
		return LoadArgs{}, fmt.Errorf("%w: negative load offset %d", ErrMalformed, a.Offset)
	}
	return a, nil
}

// EncodeKind encodes the argument of OpList and OpSaveStream.
func EncodeKind(k store.Kind) []byte {
	var e Encoder
	e.String(string(k))
	return e.B
}

// DecodeKind decodes an OpList or OpSaveStream argument.
func DecodeKind(p []byte) (store.Kind, error) {
	d := NewDecoder(p)
	k := store.Kind(d.String())
	return k, d.Finish()
}

// MaxToken bounds a stream token. The server picks it (32 hex digits today); the client only
// hands it back, so the bound is all the client checks.
const MaxToken = 64

// EncodeStreamToken encodes the result of OpSaveStream.
func EncodeStreamToken(tok string) []byte {
	var e Encoder
	e.String(tok)
	return e.B
}

// DecodeStreamToken decodes an OpSaveStream result: a non-empty token of at most MaxToken bytes.
func DecodeStreamToken(p []byte) (string, error) {
	d := NewDecoder(p)
	tok := d.String()
	if err := d.Finish(); err != nil {
		return "", err
	}
	if err := checkToken(tok); err != nil {
		return "", err
	}
	return tok, nil
}

func checkToken(tok string) error {
	if tok == "" || len(tok) > MaxToken {
		return fmt.Errorf("%w: stream token of %d bytes", ErrMalformed, len(tok))
	}
	return nil
}

// CommitStreamArgs is the argument of OpCommitStream: the token OpSaveStream answered with and
// the name the uploaded file gets.
type CommitStreamArgs struct {
	Token  string
	Handle store.Handle
}

// EncodeCommitStreamArgs encodes a.
func EncodeCommitStreamArgs(a CommitStreamArgs) []byte {
	var e Encoder
	e.String(a.Token)
	e.B = append(e.B, EncodeHandle(a.Handle)...)
	return e.B
}

// DecodeCommitStreamArgs decodes an OpCommitStream argument. Like DecodeHandle it checks the
// encoding only; the server judges the token and the name.
func DecodeCommitStreamArgs(p []byte) (CommitStreamArgs, error) {
	d := NewDecoder(p)
	a := CommitStreamArgs{Token: d.String(), Handle: decodeHandle(d)}
	if err := d.Finish(); err != nil {
		return CommitStreamArgs{}, err
	}
	if err := checkToken(a.Token); err != nil {
		return CommitStreamArgs{}, err
	}
	return a, nil
}

// AppendFileInfo appends the encoding of fi (name, size, modification time in Unix
// nanoseconds with 0 for unknown): the result of Stat and one entry of a List body.
func AppendFileInfo(b []byte, fi store.FileInfo) []byte {
	e := Encoder{B: b}
	e.String(fi.Name)
	e.Uvarint(uint64(fi.Size))
	var ns int64
	if !fi.ModTime.IsZero() {
		ns = fi.ModTime.UnixNano()
	}
	e.Varint(ns)
	return e.B
}

// DecodeFileInfo decodes a Stat result.
func DecodeFileInfo(p []byte) (store.FileInfo, error) {
	d := NewDecoder(p)
	fi := store.FileInfo{Name: d.String(), Size: int64(d.Uvarint())}
	ns := d.Varint()
	if err := d.Finish(); err != nil {
		return store.FileInfo{}, err
	}
	if fi.Size < 0 {
		return store.FileInfo{}, fmt.Errorf("%w: file size out of range", ErrMalformed)
	}
	if ns != 0 {
		fi.ModTime = time.Unix(0, ns)
	}
	return fi, nil
}

// ReadFileInfo reads one List entry from a streamed body. It returns io.EOF at the clean end.
func ReadFileInfo(br *bufio.Reader) (store.FileInfo, error) {
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return store.FileInfo{}, err // io.EOF here is the clean end of the list
	}
	if n > MaxString {
		return store.FileInfo{}, fmt.Errorf("%w: list entry name of %d bytes", ErrMalformed, n)
	}
	name := make([]byte, n)
	if _, err := io.ReadFull(br, name); err != nil {
		return store.FileInfo{}, noEOF(err)
	}
	size, err := binary.ReadUvarint(br)
	if err != nil {
		return store.FileInfo{}, noEOF(err)
	}
	ns, err := binary.ReadVarint(br)
	if err != nil {
		return store.FileInfo{}, noEOF(err)
	}
	if size > 1<<62 {
		return store.FileInfo{}, fmt.Errorf("%w: list entry size %d", ErrMalformed, size)
	}
	fi := store.FileInfo{Name: string(name), Size: int64(size)}
	if ns != 0 {
		fi.ModTime = time.Unix(0, ns)
	}
	return fi, nil
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// EncodeTempReport encodes OpCleanTemp's result.
func EncodeTempReport(r store.TempReport) []byte {
	var e Encoder
	e.Uvarint(uint64(r.Found))
	e.Uvarint(uint64(r.Removed))
	e.Uvarint(uint64(r.BytesFound))
	e.Uvarint(uint64(r.BytesRemoved))
	return e.B
}

// DecodeTempReport decodes OpCleanTemp's result.
func DecodeTempReport(p []byte) (store.TempReport, error) {
	d := NewDecoder(p)
	r := store.TempReport{Found: int(min(d.Uvarint(), 1<<31)), Removed: int(min(d.Uvarint(), 1<<31)),
		BytesFound: int64(min(d.Uvarint(), 1<<62)), BytesRemoved: int64(min(d.Uvarint(), 1<<62))}
	return r, d.Finish()
}

// EncodeUint encodes a single unsigned result (FreeSpace).
func EncodeUint(v uint64) []byte {
	var e Encoder
	e.Uvarint(v)
	return e.B
}

// DecodeUint decodes a single unsigned result.
func DecodeUint(p []byte) (uint64, error) {
	d := NewDecoder(p)
	v := d.Uvarint()
	return v, d.Finish()
}
