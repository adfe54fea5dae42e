package tape

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/snapferry/snapferry/images/blobhash"
	"github.com/snapferry/snapferry/images/repo"
)

// A save set's stream is a sequence of entries (little endian, docs/tape-format.md):
//
//	'B' u8 blob type, [32] id, u8 compression (0 none, 1 zstd), u32 raw length,
//	    u32 stored length, stored bytes             one blob, as the repository stores it
//	'S' u32 length, JSON                             the snapshot manifest (once, last)
//	'E'                                              end of stream
const (
	entryBlob     = 'B'
	entrySnapshot = 'S'
	entryEnd      = 'E'

	compNone = 0
	compZstd = 1
)

// ErrNotReadable is returned by Encoder.LoadBlob: a tape is written front to back, so nothing
// written earlier in a save set can be read back while the set is being written.
var ErrNotReadable = errors.New("blobs on a tape being written cannot be read back; tape backups are always full")

// MaxDedup bounds how many distinct blobs an Encoder remembers for deduplication: 512 Ki keys
// of 16 bytes (about 20 MiB with the map's overhead) cover 512 GiB of distinct 1 MiB blocks,
// and memory stays flat beyond that on an ESXi host's small pool. Past the bound, blobs not yet
// remembered are written again when they repeat: correct, only bigger.
const MaxDedup = 512 << 10

// dedupKey is the first half of a blob id: 128 bits of BLAKE3 make a false match (which would
// drop a blob) as unlikely as a collision of the full id for any set that fits on tapes.
type dedupKey [16]byte

func keyOf(id repo.ID) dedupKey { return dedupKey(id[:16]) }

// Encoder is a repo.BlobStore that writes each new blob into a save set's stream, compressed
// like the repository does, and deduplicated within the set. Safe for concurrent use: blobs are
// compressed in the caller's goroutine and written one at a time.
type Encoder struct {
	blockSize int
	enc       *zstd.Encoder

	mu   sync.Mutex
	w    io.Writer
	seen map[dedupKey]struct{}
	err  error
	hdr  [1 + 1 + 32 + 1 + 4 + 4]byte

	blobs int
	raw   int64

	closeOnce sync.Once
}

var _ repo.BlobStore = (*Encoder)(nil)

// NewEncoder writes to w (a save set stream). blockSize is the disk-image block size the
// snapshots will name (the repository default when 0).
func NewEncoder(w io.Writer, blockSize int) (*Encoder, error) {
	if blockSize <= 0 {
		blockSize = repo.DefaultBlockSize
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithLowerEncoderMem(true))
	if err != nil {
		return nil, fmt.Errorf("save set encoder: %w", err)
	}
	return &Encoder{blockSize: blockSize, enc: enc, w: w, seen: map[dedupKey]struct{}{}}, nil
}

func (e *Encoder) BlockSize() int             { return e.blockSize }
func (e *Encoder) BlobID(data []byte) repo.ID { return blobhash.Sum256(data) }

func (e *Encoder) HasBlob(t repo.BlobType, id repo.ID) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.seen[keyOf(id)]
	return ok
}

func (e *Encoder) LoadBlob(ctx context.Context, t repo.BlobType, id repo.ID, buf []byte) ([]byte, error) {
	return nil, fmt.Errorf("load %s blob %s: %w", t, id.Short(), ErrNotReadable)
}

// SaveBlob writes the blob unless this set has it already.
func (e *Encoder) SaveBlob(ctx context.Context, t repo.BlobType, id repo.ID, data []byte) (bool, error) {
	if e.HasBlob(t, id) {
		return false, nil
	}
	stored, comp := e.enc.EncodeAll(data, nil), byte(compZstd)
	if len(stored) >= len(data) {
		stored, comp = data, compNone
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != nil {
		return false, e.err
	}
	if _, ok := e.seen[keyOf(id)]; ok {
		return false, nil
	}
	h := e.hdr[:]
	h[0], h[1] = entryBlob, byte(t)
	copy(h[2:34], id[:])
	h[34] = comp
	binary.LittleEndian.PutUint32(h[35:], uint32(len(data)))
	binary.LittleEndian.PutUint32(h[39:], uint32(len(stored)))
	if err := e.write(h, stored); err != nil {
		return false, fmt.Errorf("save blob %s to tape: %w", id.Short(), err)
	}
	if len(e.seen) < MaxDedup || t == repo.TreeBlob {
		e.seen[keyOf(id)] = struct{}{}
	}
	e.blobs++
	e.raw += int64(len(data))
	return true, nil
}

func (e *Encoder) write(parts ...[]byte) error {
	for _, p := range parts {
		if _, err := e.w.Write(p); err != nil {
			e.err = err
			return err
		}
	}
	return nil
}

// Finish writes the snapshot manifest and the end entry. It returns the snapshot's id (the
// BLAKE3-256 of its JSON, as the repository names snapshots) and the set's totals.
func (e *Encoder) Finish(sn *repo.Snapshot) (repo.ID, SetInfo, error) {
	defer e.Close()
	b, err := json.Marshal(sn)
	if err != nil {
		return repo.ID{}, SetInfo{}, fmt.Errorf("encode snapshot of %s: %w", sn.Source, err)
	}
	id := repo.ID(blobhash.Sum256(b))
	var h [5]byte
	h[0] = entrySnapshot
	binary.LittleEndian.PutUint32(h[1:], uint32(len(b)))
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != nil {
		return id, SetInfo{}, e.err
	}
	if err := e.write(h[:], b, []byte{entryEnd}); err != nil {
		return id, SetInfo{}, fmt.Errorf("write snapshot of %s to tape: %w", sn.Source, err)
	}
	return id, SetInfo{Snapshot: id.String(), Blobs: e.blobs, Raw: e.raw}, nil
}

// Close frees the compressor; Finish does it too. Call it when a set is abandoned.
func (e *Encoder) Close() { e.closeOnce.Do(func() { e.enc.Close() }) }

// Unpack reads a save set's stream, verifies every blob against its id and saves it into dst
// (a local repository, typically a temporary one a restore then reads). It returns the
// snapshot manifest the stream carries.
func Unpack(ctx context.Context, r io.Reader, dst repo.BlobStore) (*repo.Snapshot, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(repo.MaxBlobSize))
	if err != nil {
		return nil, fmt.Errorf("unpack save set: %w", err)
	}
	defer dec.Close()
	br := bufio.NewReaderSize(r, 1<<20)
	var sn *repo.Snapshot
	var hdr [42]byte
	var stored, plain []byte
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		kind, err := br.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("unpack save set: entry %d: %w", n, noEOF(err))
		}
		switch kind {
		case entryEnd:
			if sn == nil {
				return nil, fmt.Errorf("unpack save set: the stream ends without a snapshot manifest")
			}
			return sn, nil
		case entrySnapshot:
			if _, err := io.ReadFull(br, hdr[:4]); err != nil {
				return nil, fmt.Errorf("unpack save set: snapshot entry: %w", noEOF(err))
			}
			size := binary.LittleEndian.Uint32(hdr[:4])
			if size > repo.MaxBlobSize {
				return nil, fmt.Errorf("unpack save set: snapshot manifest of %d bytes is implausible", size)
			}
			b := make([]byte, size)
			if _, err := io.ReadFull(br, b); err != nil {
				return nil, fmt.Errorf("unpack save set: snapshot entry: %w", noEOF(err))
			}
			sn = new(repo.Snapshot)
			if err := json.Unmarshal(b, sn); err != nil {
				return nil, fmt.Errorf("unpack save set: decode snapshot manifest: %w", err)
			}
		case entryBlob:
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				return nil, fmt.Errorf("unpack save set: blob entry %d: %w", n, noEOF(err))
			}
			t, id, comp := repo.BlobType(hdr[0]), repo.ID(hdr[1:33]), hdr[33]
			raw, size := binary.LittleEndian.Uint32(hdr[34:]), binary.LittleEndian.Uint32(hdr[38:])
			if raw > repo.MaxBlobSize || size > repo.MaxBlobSize {
				return nil, fmt.Errorf("unpack save set: blob %s: implausible sizes %d/%d", id.Short(), raw, size)
			}
			stored = grow(stored, int(size))
			if _, err := io.ReadFull(br, stored); err != nil {
				return nil, fmt.Errorf("unpack save set: blob %s: %w", id.Short(), noEOF(err))
			}
			switch comp {
			case compNone:
				plain = append(plain[:0], stored...)
			case compZstd:
				if plain, err = dec.DecodeAll(stored, plain[:0]); err != nil {
					return nil, fmt.Errorf("unpack save set: blob %s: decompress: %w", id.Short(), err)
				}
			default:
				return nil, fmt.Errorf("unpack save set: blob %s: unknown compression %d", id.Short(), comp)
			}
			if len(plain) != int(raw) || repo.ID(blobhash.Sum256(plain)) != id {
				return nil, fmt.Errorf("unpack save set: blob %s: content does not match its id", id.Short())
			}
			if _, err := dst.SaveBlob(ctx, t, id, plain); err != nil {
				return nil, fmt.Errorf("unpack save set: %w", err)
			}
		default:
			return nil, fmt.Errorf("unpack save set: entry %d has unknown kind %#x", n, kind)
		}
	}
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}
