package disk

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/zeebo/xxh3"

	"github.com/snapferry/snapferry/images/repo"
)

// The fingerprint cache file of one source in one repository (docs/block-cache.md). Numbers are
// little endian.
//
//	header, 120 bytes:
//	  magic       16 bytes "SNAPFERRY-BFPC1\n"
//	  version     u32 (2; version 1 files are still read, see below)
//	  block size  u32
//	  seed        u64  seed of the fast hashes
//	  disk size   u64  the disk's size when the entries were written
//	  count       u64  number of entries
//	  repo id     64 bytes: the repository's id (config "id"), zero padded
//	  check       u64  XXH3-64 of the 112 bytes before it
//	entries, count x 224 bytes, block index strictly increasing (allocated, non-zero blocks only):
//	  block index u64
//	  fast hash   16 bytes: XXH3-128 of the block with the seed (Hi then Lo, big endian)
//	  blob id     32 bytes: the id the block was stored under
//	  base id     32 bytes: the whole blob this block's patches are made against; zero: none
//	  base subs   16 x u64: XXH3-64 with the seed of each sub-block of the base (subBlockSize;
//	              zero past the base's last sub-block)
//	  check       u64  XXH3-64 of the 216 bytes before it
//
// Version 1 entries are 64 bytes (index, fast hash, blob id, check of the 56 bytes before it):
// they vouch for unchanged blocks as before and carry no base, so a changed block is stored
// whole once and becomes its own base.
//
// The count is patched into the header when the file is complete, so a truncated file is
// recognised before any entry is used (its length is not header + count x entry size). Each
// entry carries its own check because the file is used while it is read (never loaded whole): an
// entry that fails it ends the use of the file there, and every entry before it was checked.
const (
	fpMagic      = "SNAPFERRY-BFPC1\n"
	fpVersion    = 2
	fpHeaderSize = 120
	fpEntrySize  = 224 // version 2
	fpEntrySize1 = 64  // version 1
	fpRepoIDSize = 64
	fpBufSize    = 64 << 10 // read and write buffers: the whole memory cost of the cache
)

// fpHeader is a cache file's header.
type fpHeader struct {
	version   int // of a file read; files are always written as fpVersion
	blockSize int
	seed      uint64
	diskSize  int64
	count     uint64
	repoID    string
}

func (h fpHeader) marshal() ([fpHeaderSize]byte, error) {
	var b [fpHeaderSize]byte
	if len(h.repoID) == 0 || len(h.repoID) > fpRepoIDSize {
		return b, fmt.Errorf("repository id %q: want 1 to %d bytes", h.repoID, fpRepoIDSize)
	}
	copy(b[0:16], fpMagic)
	binary.LittleEndian.PutUint32(b[16:], fpVersion) // whatever h.version: entries are written in this version
	binary.LittleEndian.PutUint32(b[20:], uint32(h.blockSize))
	binary.LittleEndian.PutUint64(b[24:], h.seed)
	binary.LittleEndian.PutUint64(b[32:], uint64(h.diskSize))
	binary.LittleEndian.PutUint64(b[40:], h.count)
	copy(b[48:48+fpRepoIDSize], h.repoID)
	binary.LittleEndian.PutUint64(b[112:], xxh3.Hash(b[:112]))
	return b, nil
}

func parseFPHeader(b []byte) (fpHeader, error) {
	if len(b) < fpHeaderSize || string(b[0:16]) != fpMagic {
		return fpHeader{}, errors.New("not a block fingerprint cache")
	}
	if binary.LittleEndian.Uint64(b[112:]) != xxh3.Hash(b[:112]) {
		return fpHeader{}, errors.New("header check failed")
	}
	v := binary.LittleEndian.Uint32(b[16:])
	if v != 1 && v != fpVersion {
		return fpHeader{}, fmt.Errorf("version %d, want 1 or %d", v, fpVersion)
	}
	return fpHeader{
		version:   int(v),
		blockSize: int(binary.LittleEndian.Uint32(b[20:])),
		seed:      binary.LittleEndian.Uint64(b[24:]),
		diskSize:  int64(binary.LittleEndian.Uint64(b[32:])),
		count:     binary.LittleEndian.Uint64(b[40:]),
		repoID:    string(bytes.TrimRight(b[48:48+fpRepoIDSize], "\x00")),
	}, nil
}

// fingerprint is what the cache knows of one block.
type fingerprint struct {
	index int64
	fast  xxh3.Uint128
	id    repo.ID
	// base is the whole blob a changed block may be stored as a patch of (the block's own id
	// when it was last stored whole; zero when unknown: a version 1 entry, or a block whose
	// blob is not known to be whole), baseSubs its sub-block hashes (subHashes).
	base     repo.ID
	baseSubs subHashes
}

func (e fingerprint) marshal(b *[fpEntrySize]byte) {
	binary.LittleEndian.PutUint64(b[0:], uint64(e.index))
	binary.BigEndian.PutUint64(b[8:], e.fast.Hi)
	binary.BigEndian.PutUint64(b[16:], e.fast.Lo)
	copy(b[24:56], e.id[:])
	copy(b[56:88], e.base[:])
	for i, h := range e.baseSubs {
		binary.LittleEndian.PutUint64(b[88+8*i:], h)
	}
	binary.LittleEndian.PutUint64(b[fpEntrySize-8:], xxh3.Hash(b[:fpEntrySize-8]))
}

// parseFingerprint parses an entry of a file of the given version (len(b) is its entry size).
func parseFingerprint(b []byte, version int) (fingerprint, bool) {
	n := len(b)
	if binary.LittleEndian.Uint64(b[n-8:]) != xxh3.Hash(b[:n-8]) {
		return fingerprint{}, false
	}
	e := fingerprint{
		index: int64(binary.LittleEndian.Uint64(b[0:])),
		fast:  xxh3.Uint128{Hi: binary.BigEndian.Uint64(b[8:]), Lo: binary.BigEndian.Uint64(b[16:])},
	}
	copy(e.id[:], b[24:56])
	if version >= 2 {
		copy(e.base[:], b[56:88])
		for i := range e.baseSubs {
			e.baseSubs[i] = binary.LittleEndian.Uint64(b[88+8*i:])
		}
	}
	return e, e.index >= 0
}

// fastHash is the fast hash of a block under a cache file's seed.
func fastHash(b []byte, seed uint64) xxh3.Uint128 { return xxh3.Hash128Seed(b, seed) }

// newSeed draws the seed of a new cache file. It is random so that a guest writing its own disk
// cannot aim for a fast-hash collision: it would have to know the seed, which never leaves the
// state folder.
func newSeed() uint64 {
	var b [8]byte
	rand.Read(b[:]) // crypto/rand's Read never fails (since Go 1.24 it crashes the program instead)
	return binary.LittleEndian.Uint64(b[:])
}

// fpReader reads an old cache file front to back while the backup walks the disk in the same
// order (a merge join): memory is its read buffer, whatever the disk's size.
type fpReader struct {
	f        *os.File
	r        *bufio.Reader
	hdr      fpHeader
	left     uint64 // entries not yet read
	cur      fingerprint
	have     bool   // cur is an entry not yet passed
	last     int64  // index of the last entry read; -1 before the first
	stopped  bool   // end of file, or an entry failed its check: nothing more is used
	entryBuf []byte // one entry of the file's version
}

// openFingerprints opens the cache file at path if it was written for this repository and
// block size and is complete. Any other file (missing, truncated, corrupt, another version,
// another repository or block size) is refused with the reason; the caller then hashes every
// block, and the backup never fails because of the cache.
func openFingerprints(path, repoID string, blockSize int) (*fpReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := newFPReader(f, repoID, blockSize)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("fingerprint cache %s: %w", path, err)
	}
	return r, nil
}

func newFPReader(f *os.File, repoID string, blockSize int) (*fpReader, error) {
	var hb [fpHeaderSize]byte
	if _, err := io.ReadFull(f, hb[:]); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	h, err := parseFPHeader(hb[:])
	if err != nil {
		return nil, err
	}
	switch {
	case h.repoID != repoID:
		// Blob ids are keyed in encrypted repositories: another repository's ids mean nothing here.
		return nil, fmt.Errorf("written for repository %s, not %s", h.repoID, repoID)
	case h.blockSize != blockSize:
		return nil, fmt.Errorf("block size %d, not %d", h.blockSize, blockSize)
	case h.diskSize < 0:
		return nil, fmt.Errorf("disk size %d", h.diskSize)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	esz := uint64(fpEntrySize)
	if h.version == 1 {
		esz = fpEntrySize1
	}
	if h.count > uint64(fi.Size())/esz || fi.Size() != fpHeaderSize+int64(h.count*esz) {
		return nil, fmt.Errorf("%d bytes, %d entries want %d (truncated or damaged)", fi.Size(), h.count, fpHeaderSize+h.count*esz)
	}
	return &fpReader{f: f, r: bufio.NewReaderSize(f, fpBufSize), hdr: h, left: h.count, last: -1,
		entryBuf: make([]byte, esz)}, nil
}

// lookup returns the entry of block i, whose data is n bytes now, if the file has one. Calls
// must come in increasing i. An entry is only used for a block of the same length as then (a
// disk that grew or shrank changes its last block).
func (r *fpReader) lookup(i int64, n int) (fingerprint, bool) {
	if r == nil {
		return fingerprint{}, false
	}
	for !r.stopped && (!r.have || r.cur.index < i) {
		r.advance()
	}
	if !r.have || r.cur.index != i {
		return fingerprint{}, false
	}
	bsz := int64(r.hdr.blockSize)
	then := min(bsz, r.hdr.diskSize-i*bsz)
	if then != int64(n) {
		return fingerprint{}, false
	}
	return r.cur, true
}

func (r *fpReader) advance() {
	r.have = false
	if r.left == 0 {
		r.stopped = true
		return
	}
	r.left--
	if _, err := io.ReadFull(r.r, r.entryBuf); err != nil {
		r.stopped = true
		return
	}
	e, ok := parseFingerprint(r.entryBuf, r.hdr.version)
	if !ok || e.index <= r.last {
		r.stopped = true // damaged from here on; the entries before were checked one by one
		return
	}
	r.cur, r.have, r.last = e, true, e.index
}

func (r *fpReader) close() {
	if r != nil {
		r.f.Close()
	}
}

// fpWriter streams a new cache file into a temp file beside the final one; commit renames it
// into place. Write errors are kept and end the writing: a cache that cannot be written costs
// the next run speed, never this run its backup.
type fpWriter struct {
	path  string
	f     *os.File
	w     *bufio.Writer
	hdr   fpHeader
	last  int64
	err   error
	entry [fpEntrySize]byte
}

// createFingerprints starts a new cache file for path (its folder is created, mode 0700; the
// file is 0600: the seed in it is what keeps fast-hash collisions out of a guest's reach).
func createFingerprints(path string, h fpHeader) (*fpWriter, error) {
	hb, err := h.marshal() // checks the repository id before anything is created
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("fingerprint cache: %w", err)
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+fpTempInfix+"*")
	if err != nil {
		return nil, fmt.Errorf("fingerprint cache: %w", err)
	}
	w := &fpWriter{path: path, f: f, w: bufio.NewWriterSize(f, fpBufSize), hdr: h, last: -1}
	// A header with count 0 for now; commit writes the real one. A file left by a crash has a
	// length that does not match its count and is ignored.
	if _, err := w.w.Write(hb[:]); err != nil {
		w.abort()
		return nil, fmt.Errorf("fingerprint cache: %w", err)
	}
	return w, nil
}

// fpTempInfix marks cache files being written; RemoveStaleCaches removes old ones.
const fpTempInfix = ".tmp-"

// add appends the entry of block e.index; entries must come in increasing block order.
func (w *fpWriter) add(e fingerprint) {
	if w == nil || w.err != nil {
		return
	}
	if e.index <= w.last {
		w.err = fmt.Errorf("fingerprint cache: block %d after %d", e.index, w.last)
		return
	}
	w.last = e.index
	e.marshal(&w.entry)
	if _, err := w.w.Write(w.entry[:]); err != nil {
		w.err = err
		return
	}
	w.hdr.count++
}

// commit completes the file (count in the header, fsync) and renames it over the old cache.
// On any error the temp file is removed and the old cache stays: it is still valid (its ids were
// stored by an earlier backup, and HasBlob is asked before one is reused).
func (w *fpWriter) commit() error {
	if w == nil {
		return nil
	}
	err := w.err
	if err == nil {
		err = w.w.Flush()
	}
	if err == nil {
		var hb [fpHeaderSize]byte
		if hb, err = w.hdr.marshal(); err == nil {
			_, err = w.f.WriteAt(hb[:], 0)
		}
	}
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// The folder is not fsynced: after a crash the old file may be back, which is still
		// right for every block it names.
		err = os.Rename(w.f.Name(), w.path)
	}
	if err != nil {
		os.Remove(w.f.Name())
		return fmt.Errorf("fingerprint cache %s: %w", w.path, err)
	}
	return nil
}

// abort removes the temp file; the old cache stays in place.
func (w *fpWriter) abort() {
	if w == nil {
		return
	}
	w.f.Close()
	os.Remove(w.f.Name())
}
