package replica

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

	"github.com/snapferry/snapferry/transfer/wire"
)

// Group commit: the undo records of up to this many blocks (or bytes) share one fsync.
const (
	batchBlocks = 16
	batchBytes  = 8 << 20
)

// write applies the changed blocks of one disk file in place, behind the undo journal.
func (r *Receiver) write(ctx context.Context, st *wire.Stream, t *tx, rel, p string, a fileArgs) error {
	// The old sidecar is the base of the new one, so it must describe the file as it is.
	fi, head, existed, err := ensureSidecar(ctx, p, a.BlockSize)
	if err != nil {
		return err
	}
	seed := head.seed
	if !existed {
		seed = newSeed()
	}
	zeroes := newZeroHashes(seed)
	rec := fileRec{name: rel, existed: existed, mode: a.Mode}
	if existed {
		rec.size, rec.mtimeNs, rec.mode = fi.Size(), fi.ModTime().UnixNano(), uint32(fi.Mode().Perm())
	}
	// The file record is durable before the file is created or touched.
	if err := t.jw.append(jFile, rec.encode()); err != nil {
		return err
	}
	if err := t.jw.sync(); err != nil {
		return err
	}
	ord := t.ordinal
	t.ordinal++
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("create folder of %s: %w", rel, err)
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|noFollow, fs.FileMode(a.Mode))
	if err != nil {
		return fmt.Errorf("open replica %s: %w", rel, err)
	}
	scNew, err := newSidecarFrom(p, existed, rec.size, a.Size, a.BlockSize, zeroes)
	if err != nil {
		f.Close()
		return err
	}
	tf := &txFile{f: f, sidecarNew: scNew, bs: a.BlockSize, seed: seed}
	t.files[rel] = tf
	w := &blockWriter{r: r, t: t, tf: tf, ord: ord, oldSize: rec.size, newSize: a.Size, bs: a.BlockSize, zeroes: zeroes}
	if err := w.run(st); err != nil {
		return fmt.Errorf("write replica %s: %w", rel, err)
	}
	fi, err = f.Stat()
	if err != nil {
		return fmt.Errorf("stat replica %s: %w", rel, err)
	}
	// The mark the file keeps once this update commits (commit writes no data): a client
	// that records it can later send only the blocks it knows changed (OpRepMark).
	return st.Respond(wire.Response{Body: Mark{Exists: true, Size: fi.Size(), Mtime: fi.ModTime().UnixNano(), Seed: seed}.encode()})
}

// newSidecarFrom starts the sidecar the file will have after the update: the old entries for the
// blocks the old and new sizes share, zero entries for blocks the file grows by (they start as
// holes). Blocks the client sends overwrite their entries. The header is written at commit; the
// seed stays the old sidecar's, so the kept entries stay valid.
func newSidecarFrom(p string, existed bool, oldSize, newSize, bs int64, zeroes *zeroHashes) (*os.File, error) {
	f, err := os.OpenFile(sidecarPath(p)+".new", os.O_RDWR|os.O_CREATE|os.O_TRUNC|noFollow, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create sidecar of %s: %w", p, err)
	}
	oldCount, newCount := blockCount(oldSize, bs), blockCount(newSize, bs)
	keep := min(oldCount, newCount)
	if existed && keep > 0 {
		old, err := os.Open(sidecarPath(p))
		if err == nil {
			_, err = io.Copy(io.NewOffsetWriter(f, sidecarHeader), io.NewSectionReader(old, sidecarHeader, keep*entrySize))
			old.Close()
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("copy sidecar of %s: %w", p, err)
		}
	}
	if newCount > keep {
		buf := make([]byte, 0, 64<<10)
		for i := keep; i < newCount; i++ {
			z := zeroes.get(blockLen(i, newSize, bs))
			buf = appendEntry(buf, z.fast, z.strong)
			if len(buf)+entrySize > cap(buf) || i == newCount-1 {
				if _, err := f.WriteAt(buf, entryOffset(i+1)-int64(len(buf))); err != nil {
					f.Close()
					return nil, fmt.Errorf("write sidecar of %s: %w", p, err)
				}
				buf = buf[:0]
			}
		}
	}
	return f, nil
}

// blockWriter applies one OpRepWrite body.
type blockWriter struct {
	r                *Receiver
	t                *tx
	tf               *txFile
	ord              int64
	oldSize, newSize int64
	bs               int64
	zeroes           *zeroHashes // seeded like the new sidecar

	dec     *zstd.Decoder
	seen    []uint64 // one bit per block: a second record for a block is a protocol error
	pending []pendingBlock
	old     []byte
	zeros   []byte
	jbuf    []byte
	ebuf    []byte
}

type pendingBlock struct {
	index int64
	zero  bool
	data  []byte
	hash  [StrongSize]byte
}

func (w *blockWriter) run(st *wire.Stream) error {
	var err error
	w.dec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(w.bs)))
	if err != nil {
		return err
	}
	defer w.dec.Close()
	count := blockCount(w.newSize, w.bs)
	w.seen = make([]uint64, (count+63)/64)
	w.old = make([]byte, w.bs)
	w.zeros = make([]byte, w.bs)
	f := w.tf.f
	if w.newSize > w.oldSize {
		if err := f.Truncate(w.newSize); err != nil {
			return fmt.Errorf("grow to %d bytes: %w", w.newSize, err)
		}
	} else if w.newSize < w.oldSize {
		// Save the tail that the final truncate drops.
		for off := w.newSize; off < w.oldSize; off += w.bs - off%w.bs {
			if err := w.journalOld(off, int(min(w.bs-off%w.bs, w.oldSize-off))); err != nil {
				return err
			}
		}
	}
	br := bufio.NewReaderSize(st, 256<<10)
	var buf []byte
	pendingBytes := 0
	for {
		rec, nbuf, err := readRecord(br, int(w.bs)+int(w.bs)/8+1024, buf)
		buf = nbuf
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read block records: %w", err)
		}
		pb, err := w.decode(rec)
		if err != nil {
			return err
		}
		w.pending = append(w.pending, pb)
		pendingBytes += len(pb.data)
		if len(w.pending) >= batchBlocks || pendingBytes >= batchBytes {
			if err := w.flush(); err != nil {
				return err
			}
			pendingBytes = 0
		}
	}
	if err := w.flush(); err != nil {
		return err
	}
	if w.newSize < w.oldSize {
		if err := f.Truncate(w.newSize); err != nil {
			return fmt.Errorf("shrink to %d bytes: %w", w.newSize, err)
		}
	}
	return nil
}

// decode checks a record and returns its block as it will be written.
func (w *blockWriter) decode(rec record) (pendingBlock, error) {
	count := blockCount(w.newSize, w.bs)
	if rec.index >= count {
		return pendingBlock{}, fmt.Errorf("%w: block %d of a file with %d blocks", wire.ErrMalformed, rec.index, count)
	}
	bit := uint64(1) << (rec.index % 64)
	if w.seen[rec.index/64]&bit != 0 {
		return pendingBlock{}, fmt.Errorf("%w: block %d sent twice", wire.ErrMalformed, rec.index)
	}
	w.seen[rec.index/64] |= bit
	n := blockLen(rec.index, w.newSize, w.bs)
	pb := pendingBlock{index: rec.index}
	switch rec.kind {
	case recZero:
		pb.zero = true
		return pb, nil
	case recRaw:
		pb.data = append(make([]byte, 0, n), rec.payload...)
	case recZstd:
		var err error
		pb.data, err = w.dec.DecodeAll(rec.payload, make([]byte, 0, n))
		if err != nil {
			return pb, fmt.Errorf("decompress block %d: %w", rec.index, err)
		}
	case recS2:
		// The length is checked before decoding: a hostile sender cannot make us allocate more
		// than a block.
		if dn, err := s2.DecodedLen(rec.payload); err != nil || dn != n {
			return pb, fmt.Errorf("%w: block %d: s2 length %d, want %d (%v)", wire.ErrMalformed, rec.index, dn, n, err)
		}
		var err error
		if pb.data, err = s2.Decode(make([]byte, n), rec.payload); err != nil {
			return pb, fmt.Errorf("decompress block %d: %w", rec.index, err)
		}
	}
	if len(pb.data) != n {
		return pb, fmt.Errorf("%w: block %d has %d bytes, want %d", wire.ErrMalformed, rec.index, len(pb.data), n)
	}
	pb.hash = rec.hash
	if strongSum(pb.data) != rec.hash {
		return pb, fmt.Errorf("block %d does not match its hash: damaged in transit", rec.index)
	}
	return pb, nil
}

// flush journals the old contents of the pending blocks, makes that durable with one fsync,
// then writes the blocks in place and their hashes into the new sidecar.
func (w *blockWriter) flush() error {
	if len(w.pending) == 0 {
		return nil
	}
	saved := 0
	for _, pb := range w.pending {
		off := pb.index * w.bs
		if off < w.oldSize {
			if err := w.journalOld(off, int(min(w.bs, w.oldSize-off))); err != nil {
				return err
			}
			saved++
		}
	}
	// Blocks past the old end need no undo record (rollback truncates), so a new replica's
	// first run pays no journal fsyncs at all.
	if saved > 0 {
		if err := w.t.jw.sync(); err != nil {
			return err
		}
	}
	f := w.tf.f
	for _, pb := range w.pending {
		off := pb.index * w.bs
		n := blockLen(pb.index, w.newSize, w.bs)
		var entry []byte
		if pb.zero {
			z := w.zeroes.get(n)
			entry = appendEntry(w.ebuf[:0], z.fast, z.strong)
			if err := punchHole(f, off, n, w.zeros); err != nil {
				return err
			}
		} else {
			// The fast hash is computed here with this sidecar's seed, never taken from the client.
			entry = appendEntry(w.ebuf[:0], fastSum(pb.data, w.zeroes.seed), pb.hash)
			if _, err := f.WriteAt(pb.data, off); err != nil {
				return fmt.Errorf("write block %d: %w", pb.index, err)
			}
		}
		if _, err := w.tf.sidecarNew.WriteAt(entry, entryOffset(pb.index)); err != nil {
			return fmt.Errorf("write sidecar entry %d: %w", pb.index, err)
		}
		if hook := w.r.hooks.AfterBlockWrite; hook != nil {
			hook(w.r.written.Add(1))
		}
	}
	clear(w.pending)
	w.pending = w.pending[:0]
	return nil
}

// journalOld appends the current contents of [off, off+n) to the journal (not yet synced).
func (w *blockWriter) journalOld(off int64, n int) error {
	old := w.old[:n]
	if _, err := w.tf.f.ReadAt(old, off); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read old block at %d: %w", off, err)
	}
	zero := isZero(old, w.zeros)
	w.jbuf = appendBlockRec(w.jbuf[:0], blockRec{file: w.ord, off: off, n: int64(n), zero: zero, data: old})
	return w.t.jw.append(jBlock, w.jbuf)
}

func isZero(p, zeros []byte) bool { return bytes.Equal(p, zeros[:len(p)]) }
