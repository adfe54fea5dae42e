package replica

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/snapferry/snapferry/transfer/serve/jail"
)

// Sidecar file layout: a fixed header, then one entry per block, block 0 first.
//
//	magic      16 bytes "SNAPFERRY-HASH2\n"
//	block size uint64 little endian
//	file size  uint64
//	mtime      int64, Unix nanoseconds of the replica file the entries describe
//	count      uint64, number of entries
//	seed       uint64, seed of the fast hashes
//	entries    count x (16-byte XXH3-128 fast hash, 32-byte BLAKE3 strong hash)
const (
	sidecarMagic  = "SNAPFERRY-HASH2\n"
	sidecarHeader = 56
	entrySize     = FastSize + StrongSize
)

// sidecarPath is the hash sidecar of a replica file: beside it, under a server-private name a
// client can never address.
func sidecarPath(file string) string {
	return filepath.Join(filepath.Dir(file), jail.PrivatePrefix+filepath.Base(file)+".hashes")
}

type sidecarHead struct {
	blockSize, size, count int64
	mtime                  int64
	seed                   uint64
}

func (h sidecarHead) encode() []byte {
	b := make([]byte, 0, sidecarHeader)
	b = append(b, sidecarMagic...)
	b = binary.LittleEndian.AppendUint64(b, uint64(h.blockSize))
	b = binary.LittleEndian.AppendUint64(b, uint64(h.size))
	b = binary.LittleEndian.AppendUint64(b, uint64(h.mtime))
	b = binary.LittleEndian.AppendUint64(b, uint64(h.count))
	return binary.LittleEndian.AppendUint64(b, h.seed)
}

func entryOffset(i int64) int64 { return sidecarHeader + i*entrySize }

// readSidecarHead reads a sidecar header; ok is false for a missing or damaged sidecar.
func readSidecarHead(path string) (sidecarHead, bool) {
	f, err := os.Open(path)
	if err != nil {
		return sidecarHead{}, false
	}
	defer f.Close()
	var b [sidecarHeader]byte
	if _, err := io.ReadFull(f, b[:]); err != nil || !bytes.Equal(b[:16], []byte(sidecarMagic)) {
		return sidecarHead{}, false
	}
	h := sidecarHead{
		blockSize: int64(binary.LittleEndian.Uint64(b[16:])),
		size:      int64(binary.LittleEndian.Uint64(b[24:])),
		mtime:     int64(binary.LittleEndian.Uint64(b[32:])),
		count:     int64(binary.LittleEndian.Uint64(b[40:])),
		seed:      binary.LittleEndian.Uint64(b[48:]),
	}
	fi, err := f.Stat()
	if err != nil || h.blockSize <= 0 || h.size < 0 || h.count != blockCount(h.size, h.blockSize) || fi.Size() != entryOffset(h.count) {
		return sidecarHead{}, false
	}
	return h, true
}

// sidecarFresh returns the header of the sidecar at path if it describes file (as stat'ed) at
// block size bs.
func sidecarFresh(path string, fi fs.FileInfo, bs int64) (sidecarHead, bool) {
	h, ok := readSidecarHead(path)
	return h, ok && h.blockSize == bs && h.size == fi.Size() && h.mtime == fi.ModTime().UnixNano()
}

// ensureSidecar makes the sidecar of file fresh for block size bs, rebuilding it by reading the
// file when it is missing, damaged or stale, and returns its header. A missing file gets no
// sidecar (ok=false).
func ensureSidecar(ctx context.Context, file string, bs int64) (fs.FileInfo, sidecarHead, bool, error) {
	fi, err := os.Lstat(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, sidecarHead{}, false, nil
	}
	if err != nil {
		return nil, sidecarHead{}, false, fmt.Errorf("stat replica %s: %w", file, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, sidecarHead{}, false, fmt.Errorf("replica %s is not a regular file (%s)", file, fi.Mode().Type())
	}
	sc := sidecarPath(file)
	if h, ok := sidecarFresh(sc, fi, bs); ok {
		return fi, h, true, nil
	}
	h, err := rebuildSidecar(ctx, file, sc, bs)
	if err != nil {
		return nil, sidecarHead{}, false, err
	}
	fi, err = os.Lstat(file)
	if err != nil {
		return nil, sidecarHead{}, false, fmt.Errorf("stat replica %s: %w", file, err)
	}
	return fi, h, true, nil
}

// rebuildSidecar hashes the replica file and installs a new sidecar (with a new seed) atomically.
func rebuildSidecar(ctx context.Context, file, sc string, bs int64) (sidecarHead, error) {
	f, err := os.OpenFile(file, os.O_RDONLY|noFollow, 0)
	if err != nil {
		return sidecarHead{}, fmt.Errorf("open replica %s to hash it: %w", file, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return sidecarHead{}, fmt.Errorf("stat replica %s: %w", file, err)
	}
	head := sidecarHead{blockSize: bs, size: fi.Size(), mtime: fi.ModTime().UnixNano(), count: blockCount(fi.Size(), bs), seed: newSeed()}
	tmp, err := os.CreateTemp(filepath.Dir(sc), jail.PrivatePrefix+"tmp-*")
	if err != nil {
		return sidecarHead{}, fmt.Errorf("create sidecar for %s: %w", file, err)
	}
	defer os.Remove(tmp.Name()) // after the rename this removes nothing
	defer tmp.Close()
	if _, err := tmp.WriteAt(head.encode(), 0); err != nil {
		return sidecarHead{}, fmt.Errorf("write sidecar %s: %w", tmp.Name(), err)
	}
	s := &scanner{r: f, name: f.Name(), holes: newDataMap(f, head.size), size: head.size, bs: bs, workers: min(runtime.GOMAXPROCS(0), 4), zeroes: newZeroHashes(head.seed), strong: true}
	err = s.run(ctx, nil, func(b *block) error {
		_, err := tmp.WriteAt(appendEntry(nil, b.fast, b.strong), entryOffset(b.index))
		return err
	})
	if err != nil {
		return sidecarHead{}, fmt.Errorf("hash replica %s: %w", file, err)
	}
	if err := tmp.Truncate(entryOffset(head.count)); err != nil {
		return sidecarHead{}, fmt.Errorf("write sidecar %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return sidecarHead{}, fmt.Errorf("fsync sidecar %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), sc); err != nil {
		return sidecarHead{}, fmt.Errorf("install sidecar %s: %w", sc, err)
	}
	return head, nil
}

func appendEntry(b []byte, fast fastHash, strong [StrongSize]byte) []byte {
	b = append(b, fast[:]...)
	return append(b, strong[:]...)
}
