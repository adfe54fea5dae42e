package repo

import (
	"encoding/binary"
	"os"
	"runtime"
	"slices"
)

// A backup must find whether each blob it meets is stored already, so the index of every blob
// has to be at hand; at 52 bytes per blob in memory (32 of them the id) it was what still grew
// with the tree: ~26 MB at 500 000 files, twice that while two sorted runs merged. An index
// with a spill file keeps in memory only 8 bytes per blob, the first 4 bytes of the id and the
// number of its record in a file of full records (id and location, spillRecSize bytes each)
// under Options.TempDir. A lookup binary-searches the prefixes and reads the records whose
// prefix matches (one in a healthy index; 4 bytes leave ~n/2^32 false matches per lookup) to
// compare the full id, so a blob is never taken for another. A lookup that misses reads nothing,
// which is what a first backup's lookups do; one that hits costs one small pread, which the
// page cache serves. Records go through plain file reads (no mmap: not on every system the
// binary runs on) and are only appended, never rewritten. The base loaded at Open goes further,
// to 4 bytes per blob: its records are written in its order (index_spill_base.go).

// spillKey is one blob of a compact run: the first 4 bytes of its id (big endian, so runs sort
// like ids by their first bytes) and its record number in the spill file.
type spillKey struct {
	pfx, ref uint32
}

// spillKeySize is the memory one blob of a compact run takes.
const spillKeySize = 8

// spillRecSize is a record: 32-byte id, u32 pack, offset, stored, raw, u8 type, u8 comp.
const spillRecSize = 50

// spillTail bounds the records kept in memory before they are written to the file.
const spillTail = 64 << 10

func prefixOf(id ID) uint32 { return binary.BigEndian.Uint32(id[:4]) }

// spillFile holds the full records of the blobs of compact runs. Not safe for concurrent use:
// its index's lock (Repository.mu) guards it.
type spillFile struct {
	f       *os.File
	dir     string // where it lives: the base's staging file goes there too
	flushed uint32 // records in the file; the records after them are in tail
	tail    []byte
	// broken is set when the file failed a write: records stay in memory from then on (the
	// run goes on with the memory an index without a spill file takes for them).
	broken bool
	rec    [spillRecSize]byte
}

// newSpillFile creates an unnamed spill file in dir (removed at once; closed when its index is
// garbage). nil when that fails: the index then keeps full entries in memory.
func newSpillFile(dir string) *spillFile {
	f, err := os.CreateTemp(dir, "index-*.spill")
	if err != nil {
		return nil
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil
	}
	return &spillFile{f: f, dir: dir}
}

// next is the number the next record added gets.
func (s *spillFile) next() uint32 { return s.flushed + uint32(len(s.tail)/spillRecSize) }

// add appends the record of one blob and returns its number.
func (s *spillFile) add(id ID, e indexEntry) uint32 {
	n := s.next()
	s.tail = appendSpillRec(s.tail, id, e)
	if len(s.tail) >= spillTail && !s.broken {
		if _, err := s.f.WriteAt(s.tail, int64(s.flushed)*spillRecSize); err != nil {
			s.broken = true
		} else {
			s.flushed += uint32(len(s.tail) / spillRecSize)
			s.tail = s.tail[:0]
		}
	}
	return n
}

// appendSpillRec appends the record of one blob to b.
func appendSpillRec(b []byte, id ID, e indexEntry) []byte {
	b = append(b, id[:]...)
	b = binary.LittleEndian.AppendUint32(b, e.pack)
	b = binary.LittleEndian.AppendUint32(b, e.offset)
	b = binary.LittleEndian.AppendUint32(b, e.stored)
	b = binary.LittleEndian.AppendUint32(b, e.raw)
	return append(b, byte(e.typ), e.comp)
}

// decodeSpillRec decodes the record at the start of b.
func decodeSpillRec(b []byte) (ID, indexEntry) {
	var id ID
	copy(id[:], b)
	return id, indexEntry{
		pack:   binary.LittleEndian.Uint32(b[32:]),
		offset: binary.LittleEndian.Uint32(b[36:]),
		stored: binary.LittleEndian.Uint32(b[40:]),
		raw:    binary.LittleEndian.Uint32(b[44:]),
		typ:    BlobType(b[48]),
		comp:   b[49],
	}
}

// read returns record ref. ok is false only when the file cannot be read back; the lookup then
// misses, which costs a blob stored again, never a wrong blob.
func (s *spillFile) read(ref uint32) (ID, indexEntry, bool) {
	var b []byte
	if ref >= s.flushed {
		at := int(ref-s.flushed) * spillRecSize
		b = s.tail[at : at+spillRecSize]
	} else {
		if _, err := s.f.ReadAt(s.rec[:], int64(ref)*spillRecSize); err != nil {
			return ID{}, indexEntry{}, false
		}
		b = s.rec[:]
	}
	id, e := decodeSpillRec(b)
	return id, e, true
}

// closeSpill closes the spill file once the index x is unreachable: a reload replaces the
// index while a caller may still hold the old one.
func (x *index) closeSpill() {
	if x.spill != nil {
		runtime.AddCleanup(x, func(f *os.File) { f.Close() }, x.spill.f)
	}
}

// forEach calls fn with every blob the index knows and the copy lookups give, in no set order.
func (x *index) forEach(fn func(id ID, e indexEntry)) {
	for id, e := range x.overlay {
		fn(id, e)
	}
	for _, run := range append([][]sortedEntry{x.base}, x.segs...) {
		for _, se := range run {
			fn(se.id, se.e)
		}
	}
	for _, run := range append([]keyRun{x.cbase}, x.csegs...) {
		for i := range run.n {
			if id, e, ok := x.spill.read(run.at(i).ref); ok {
				fn(id, e)
			}
		}
	}
}

func cmpU32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// keyOf spills one blob and returns its key.
func (x *index) keyOf(id ID, e indexEntry) spillKey {
	return spillKey{pfx: prefixOf(id), ref: x.spill.add(id, e)}
}

// sortRun sorts a compact run by prefix, then record number (the order blobs were loaded in).
func sortRun(run []spillKey) {
	slices.SortFunc(run, func(a, b spillKey) int {
		if c := cmpU32(a.pfx, b.pfx); c != 0 {
			return c
		}
		return cmpU32(a.ref, b.ref)
	})
}

// sealCompact is seal for an index with a spill file: the sealed blobs become a compact run.
func (x *index) sealCompact(seg []sortedEntry) {
	keys := make([]spillKey, len(seg))
	for i, se := range seg {
		keys[i] = x.keyOf(se.id, se.e)
	}
	sortRun(keys)
	var run keyRun
	for _, k := range keys {
		x.push(&run, k)
	}
	x.trim(&run)
	x.cbase, x.csegs = addRun(x.cbase, x.csegs, run, x.mergeRuns, func(r keyRun) int { return r.n })
}

// IndexMemory is what the blob index holds in memory now (tree runs set their memory limit
// above it).
func (r *Repository) IndexMemory() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return int64(r.idx.memBytes())
}
