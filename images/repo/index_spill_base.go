package repo

import (
	"cmp"
	"math/bits"
	"os"
	"slices"
	"sort"
)

// The base an index loads at Open holds every blob of the repository, and it is what a backup
// with a parent and a restore keep in memory for the whole run (8 bytes per blob as a compact
// run of prefix and record number: 4 MB at 500 000 files, the part of their memory that grew
// with the tree). Its records are written to the spill file in sorted order instead, so the
// record of the i-th blob of the base is record pos0+i and the base keeps only the 4-byte
// prefix per blob (keyRun.pre): 4 bytes per blob, 2.5 from 262 144 blobs (splitPrefixesFrom). Writing them sorted must not cost a random
// read per blob: while the index files load, records are staged in buckets by their first
// bits (chunks of a fixed size in a staging file, one small buffer per bucket), and finishing
// the base reads, sorts and writes one bucket at a time, so the load holds the buffers, the
// chunk numbers and one bucket at a time instead of 8 bytes per blob for all of them.

// stageChunkRecs is the records per staged chunk (4 000 bytes: one read per chunk at finish).
const stageChunkRecs = 80

// stageBucketRecs is about the records per bucket: the one bucket sorted at a time (~440 KB).
const stageBucketRecs = 8192

// stageMaxBuckets bounds the buckets, and with them the buffers (256 x 4 000 bytes).
const stageMaxBuckets = 256

// baseLoad stages the records of the base while index files load. Not safe for concurrent use.
type baseLoad struct {
	shift   uint       // a prefix's bucket is pfx >> shift
	pending [][]byte   // per bucket: records not staged yet (less than a chunk)
	chunks  [][]uint32 // per bucket: its staged chunks, in load order
	stage   *os.File   // nil when it could not be created: chunks stay in held
	staged  uint32
	held    map[uint32][]byte // chunks not in the staging file (no file, or its write failed)
	n       int               // records loaded
}

// newBaseLoad prepares the staging of about n records, in a temp file in dir.
func newBaseLoad(dir string, n int) *baseLoad {
	buckets := min(stageMaxBuckets, max(1, n/stageBucketRecs))
	b := bits.Len(uint(buckets - 1)) // buckets rounded up to a power of two: 2^b
	l := &baseLoad{shift: uint(32 - b), pending: make([][]byte, 1<<b), chunks: make([][]uint32, 1<<b), held: map[uint32][]byte{}}
	if f, err := os.CreateTemp(dir, "index-*.stage"); err == nil {
		if os.Remove(f.Name()) == nil {
			l.stage = f
		} else {
			f.Close()
			os.Remove(f.Name())
		}
	}
	return l
}

// add stages the record of one blob.
func (l *baseLoad) add(id ID, e indexEntry) {
	k := prefixOf(id) >> l.shift
	if l.shift == 32 {
		k = 0
	}
	if l.pending[k] == nil {
		l.pending[k] = make([]byte, 0, stageChunkRecs*spillRecSize)
	}
	l.pending[k] = appendSpillRec(l.pending[k], id, e)
	l.n++
	if len(l.pending[k]) < stageChunkRecs*spillRecSize {
		return
	}
	c := l.staged
	l.staged++
	l.chunks[k] = append(l.chunks[k], c)
	if l.stage == nil {
		l.held[c] = l.pending[k]
		l.pending[k] = nil
		return
	}
	if _, err := l.stage.WriteAt(l.pending[k], int64(c)*stageChunkRecs*spillRecSize); err != nil {
		l.held[c] = l.pending[k]
		l.pending[k] = nil
		return
	}
	l.pending[k] = l.pending[k][:0]
}

// memBytes is what the staging holds in memory.
func (l *baseLoad) memBytes() int {
	n := 0
	for k := range l.pending {
		n += cap(l.pending[k]) + 4*cap(l.chunks[k])
	}
	for _, c := range l.held {
		n += cap(c)
	}
	return n
}

// finish writes the staged records to x's spill file sorted by id, one copy per blob (the one
// sortBase would pick; the others go to dups), and returns them as a positional run. A chunk
// that cannot be read back is left out: its blobs are then not found (stored again by a
// backup), never taken for others. One bucket at a time is in memory: its records and the
// order of them, 58 bytes per record, in buffers sized once for the biggest bucket.
func (l *baseLoad) finish(x *index) keyRun {
	if l.stage != nil {
		defer l.stage.Close()
	}
	most := 0
	for k := range l.pending {
		most = max(most, len(l.chunks[k])*stageChunkRecs*spillRecSize+len(l.pending[k]))
	}
	buf := make([]byte, 0, most)
	order := make([]uint64, 0, most/spillRecSize)
	keys := newBasePrefixes(l.n, l.n >= splitPrefixesFrom)
	first := x.spill.next()
	for k := range l.pending {
		buf = buf[:0]
		for _, c := range l.chunks[k] {
			buf = l.readChunk(buf, c)
		}
		buf = append(buf, l.pending[k]...)
		l.pending[k], l.chunks[k] = nil, nil
		rec := func(i uint32) []byte { return buf[int(i)*spillRecSize:][:spillRecSize] }
		// By id, then load order (the copies of one blob in the order addCopy expects):
		// integers of prefix and place sort fast, and the few runs of one prefix are then
		// sorted by the whole id.
		order = order[:0]
		for i := range len(buf) / spillRecSize {
			order = append(order, uint64(prefixOf(ID(rec(uint32(i))[:32])))<<32|uint64(i))
		}
		slices.Sort(order)
		byID := func(a, b uint64) int {
			if c := compareIDs(ID(rec(uint32(a))[:32]), ID(rec(uint32(b))[:32])); c != 0 {
				return c
			}
			return cmp.Compare(uint32(a), uint32(b))
		}
		for i := 0; i < len(order); {
			j := i + 1
			for j < len(order) && order[j]>>32 == order[i]>>32 {
				j++
			}
			if j-i > 1 {
				slices.SortFunc(order[i:j], byID)
			}
			i = j
		}
		for i := 0; i < len(order); {
			id, e := decodeSpillRec(rec(uint32(order[i])))
			j := i + 1
			var group []indexEntry
			for ; j < len(order) && ID(rec(uint32(order[j]))[:32]) == id; j++ {
				if group == nil {
					group = addCopy(nil, e)
				}
				_, ej := decodeSpillRec(rec(uint32(order[j])))
				group = addCopy(group, ej)
			}
			if group != nil {
				e = x.rankCopies(id, group)
			}
			x.spill.add(id, e)
			keys.add(prefixOf(id))
			i = j
		}
	}
	l.held = nil
	keys.done()
	return x.positionalRun(keys, first)
}

// readChunk appends staged chunk c to buf (nothing when it cannot be read).
func (l *baseLoad) readChunk(buf []byte, c uint32) []byte {
	if h, ok := l.held[c]; ok {
		return append(buf, h...)
	}
	n := len(buf)
	buf = slices.Grow(buf, stageChunkRecs*spillRecSize)[:n+stageChunkRecs*spillRecSize]
	if _, err := l.stage.ReadAt(buf[n:], int64(c)*stageChunkRecs*spillRecSize); err != nil {
		return buf[:n]
	}
	return buf
}

// splitPrefixesFrom is the base size from which prefixes keep only their low half (2 bytes per
// blob) and a table of 65 537 positions gives the high half (256 KiB: half a byte per blob
// here, 4 at 65 536 blobs, so small bases keep whole prefixes).
const splitPrefixesFrom = 1 << 18

// basePrefixes are the sorted prefixes of a positional run: whole (4 bytes each), or split, the
// low halves with hi[h] the first key whose high half is h or more.
type basePrefixes struct {
	full []uint32
	lo   []uint16
	hi   []uint32 // split: 1<<16+1 entries, hi[1<<16] = n
	next int      // split, while adding: the first high half whose position is not set yet
}

func newBasePrefixes(n int, split bool) *basePrefixes {
	if split {
		return &basePrefixes{lo: make([]uint16, 0, n), hi: make([]uint32, 1<<16+1)}
	}
	return &basePrefixes{full: make([]uint32, 0, n)}
}

// add appends the next prefix (in sorted order).
func (p *basePrefixes) add(v uint32) {
	if p.hi == nil {
		p.full = append(p.full, v)
		return
	}
	for ; p.next <= int(v>>16); p.next++ {
		p.hi[p.next] = uint32(len(p.lo))
	}
	p.lo = append(p.lo, uint16(v))
}

// done sets the positions of the high halves after the last prefix added.
func (p *basePrefixes) done() {
	for ; p.hi != nil && p.next <= 1<<16; p.next++ {
		p.hi[p.next] = uint32(len(p.lo))
	}
}

func (p *basePrefixes) len() int {
	if p.hi != nil {
		return len(p.lo)
	}
	return len(p.full)
}

func (p *basePrefixes) bytes() int { return 4*cap(p.full) + 2*cap(p.lo) + 4*cap(p.hi) }

// at is prefix i.
func (p *basePrefixes) at(i int) uint32 {
	if p.hi == nil {
		return p.full[i]
	}
	h := sort.Search(1<<16, func(h int) bool { return int(p.hi[h+1]) > i })
	return uint32(h)<<16 | uint32(p.lo[i])
}

// first is the position of the first prefix >= v.
func (p *basePrefixes) first(v uint32) int {
	if p.hi == nil {
		return sort.Search(len(p.full), func(i int) bool { return p.full[i] >= v })
	}
	from, to := int(p.hi[v>>16]), int(p.hi[v>>16+1])
	return from + sort.Search(to-from, func(k int) bool { return uint32(p.lo[from+k]) >= v&0xffff })
}
