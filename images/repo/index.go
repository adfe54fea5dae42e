package repo

import (
	"cmp"
	"slices"
	"unsafe"
)

// indexEntry locates one blob: 18 bytes of payload, no pointers, so the garbage collector never
// scans the index. pack is a number into index.packs.
type indexEntry struct {
	pack   uint32
	offset uint32
	stored uint32
	raw    uint32
	typ    BlobType
	comp   uint8
}

// pendingPack marks a blob reserved by SaveBlob whose pack is not uploaded yet.
const pendingPack = ^uint32(0)

type sortedEntry struct {
	id ID
	e  indexEntry
}

// index is the in-memory blob index. Blobs live in sorted slices (52 bytes per blob, no pointers,
// binary search; with a spill file 8 bytes, 4 for the base loaded at Open, see index_spill.go): base holds what was loaded at Open, segs what this run has indexed since. A
// map holds only the blobs this run queued or uploaded but no index file names yet; once an
// index file is written they move to a new segment, and segments merge whenever the newest is as
// big as the one before (so there are O(log n) of them and each blob is copied O(log n) times).
// A map costs ~100 bytes per blob and never shrinks: a first backup of a 2 TiB disk must not keep
// 2 million blobs in one. Not safe for concurrent use; Repository guards it with its mutex.
type index struct {
	packs   []ID
	packNum map[ID]uint32
	base    []sortedEntry
	segs    [][]sortedEntry
	overlay map[ID]indexEntry
	// dups holds the other copies of blobs that several loaded packs hold (two writers at once,
	// an interrupted prune, or copies a hostile append-only client planted), in load order.
	// base keeps one copy per blob for lookups; readers fall back to these when that copy does
	// not verify, and prune deletes a copy only after the one it keeps was read and verified.
	// Nothing in a healthy repository is duplicated for long, so this stays small.
	dups map[ID][]indexEntry
	// dropped are packs a prune took out of the index (tombstones): never adopted again.
	dropped map[ID]bool
	// trees maps the packs holding tree blobs only to their blobs' end (tree_packs.go).
	trees map[uint32]uint32

	// spill, when set, holds the full records of cbase and csegs, which then stand in for base
	// and segs at 8 bytes per blob in memory, 4 for the base loaded at Open (index_spill.go,
	// index_spill_base.go). Open uses it when the repository
	// has a TempDir; the strict loads of prune, repair and rebuild-index, and check, which work
	// with positions in base, keep full entries.
	spill *spillFile
	cbase keyRun
	csegs []keyRun
	// load stages the compact base while index files load; sortBase turns it into cbase
	// (index_spill_base.go).
	load *baseLoad
	// keyBytes is the memory of the compact runs' keys, merges in progress included, and
	// peakKeyBytes its highest value (index_keyrun.go).
	keyBytes, peakKeyBytes int
}

func newIndex() *index {
	return &index{packNum: map[ID]uint32{}, overlay: map[ID]indexEntry{}, dups: map[ID][]indexEntry{}, dropped: map[ID]bool{}}
}

func (x *index) addPack(id ID) uint32 {
	if n, ok := x.packNum[id]; ok {
		return n
	}
	n := uint32(len(x.packs))
	x.packs = append(x.packs, id)
	x.packNum[id] = n
	return n
}

// reserve sizes base for index files of total bytes: every blob takes 48 bytes in an index
// file, so base is allocated once at its final size instead of growing (growth would leave up to
// 25% slack and double the peak).
func (x *index) reserve(total int64) {
	if x.spill != nil {
		x.load = newBaseLoad(x.spill.dir, int(total/indexEntrySize))
		return
	}
	x.base = slices.Grow(x.base, int(total/indexEntrySize))
}

// appendBase adds loaded entries; call sortBase once after the last.
func (x *index) appendBase(pack ID, blobs []packBlob) {
	n := x.addPack(pack)
	x.noteTreePack(n, blobs)
	for _, b := range blobs {
		if x.spill != nil {
			if x.load == nil {
				x.load = newBaseLoad(x.spill.dir, 0)
			}
			x.load.add(b.ID, entryOf(n, b))
			continue
		}
		x.base = append(x.base, sortedEntry{id: b.ID, e: entryOf(n, b)})
	}
}

func entryOf(pack uint32, b packBlob) indexEntry {
	e := indexEntry{pack: pack, offset: b.Offset, stored: b.Stored, raw: b.Raw, typ: b.Type, comp: b.Compression}
	if b.Flags&blobFlagPatch != 0 {
		e.comp |= compPatch
	}
	if b.Flags&blobFlagDamaged != 0 {
		e.comp |= compDamaged
	}
	return e
}

// sameBlobs reports whether two lists describe a pack alike, apart from damage marks.
func sameBlobs(a, b []packBlob) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		x.Flags &^= blobFlagDamaged
		y.Flags &^= blobFlagDamaged
		if x != y {
			return false
		}
	}
	return true
}

// copyDamaged reports whether the copy of id at offset in pack number num is marked damaged.
func (x *index) copyDamaged(id ID, num, offset uint32) bool {
	for _, e := range x.copies(id) {
		if e.pack == num && e.offset == offset {
			return e.comp&compDamaged != 0
		}
	}
	return false
}

// sortBase sorts and moves duplicate blobs (the same blob in two packs) to dups. base keeps, in
// this order: an undamaged copy over one check marked damaged, a whole copy over a patch, then
// the first pack loaded (lowest number; loadIndex loads index files in the order the store
// received them, which a client cannot choose for files already there). The same copy listed by
// two index files is one copy, damaged if either says so.
func (x *index) sortBase() {
	if x.spill != nil {
		if x.load != nil {
			x.cbase = x.load.finish(x)
			x.load = nil
		}
		return
	}
	slices.SortFunc(x.base, func(a, b sortedEntry) int {
		if c := compareIDs(a.id, b.id); c != 0 {
			return c
		}
		return compareCopies(a.e, b.e)
	})
	out := x.base[:0]
	for i := 0; i < len(x.base); {
		j := i + 1
		for j < len(x.base) && x.base[j].id == x.base[i].id {
			j++
		}
		id := x.base[i].id
		if j-i == 1 {
			out = append(out, x.base[i])
			i = j
			continue
		}
		var group []indexEntry
		for _, se := range x.base[i:j] {
			group = addCopy(group, se.e)
		}
		out = append(out, sortedEntry{id: id, e: x.rankCopies(id, group)})
		i = j
	}
	clear(x.base[len(out):])
	x.base = out
}

// addCopy adds e to the copies of one blob met so far: the same copy listed by two index files
// is one copy, damaged if either says so.
func addCopy(group []indexEntry, e indexEntry) []indexEntry {
	k := slices.IndexFunc(group, func(c indexEntry) bool { return c.pack == e.pack && c.offset == e.offset })
	if k < 0 {
		return append(group, e)
	}
	group[k].comp |= e.comp & compDamaged
	return group
}

// rankCopies orders the copies of blob id (compareCopies), keeps the others in dups and returns
// the one lookups give.
func (x *index) rankCopies(id ID, group []indexEntry) indexEntry {
	slices.SortStableFunc(group, compareCopies)
	if len(group) > 1 {
		x.dups[id] = group[1:]
	}
	return group[0]
}

// compareCopies orders copies of one blob: undamaged first, whole before patch, then by pack
// number (ties broken so that an unstable sort gives the same result as a stable one).
func compareCopies(a, b indexEntry) int {
	if c := cmp.Compare(a.comp&compDamaged, b.comp&compDamaged); c != 0 {
		return c
	}
	// A whole copy wins over a patch of the same block: a patch built on this blob (a base must
	// be whole) stays readable after prune keeps only the copy the index uses.
	if c := cmp.Compare(a.comp&compPatch, b.comp&compPatch); c != 0 {
		return c
	}
	if c := cmp.Compare(a.pack, b.pack); c != 0 {
		return c
	}
	return cmp.Compare(a.offset, b.offset)
}

// copies returns every indexed copy of id: the one lookup gives first, then the others.
func (x *index) copies(id ID) []indexEntry {
	e, ok := x.lookup(id)
	if !ok {
		return nil
	}
	return append([]indexEntry{e}, x.dups[id]...)
}

// setPrimary makes the copy e of the base blob at position i the one lookups return, keeping
// the old one among the duplicates.
func (x *index) setPrimary(i int, e indexEntry) {
	id := x.base[i].id
	old := x.base[i].e
	if old == e {
		return
	}
	rest := []indexEntry{old}
	for _, d := range x.dups[id] {
		if d != e {
			rest = append(rest, d)
		}
	}
	x.base[i].e = e
	x.dups[id] = rest
}

// find returns the position of id in base, or -1. Prune and check use positions in base (one
// mark bit per blob) right after a fresh strict load, when base holds every blob (an index with
// a spill file has an empty base).
func (x *index) find(id ID) int { return findIn(x.base, id) }

func findIn(s []sortedEntry, id ID) int {
	i, ok := slices.BinarySearchFunc(s, id, func(e sortedEntry, id ID) int { return compareIDs(e.id, id) })
	if !ok {
		return -1
	}
	return i
}

func (x *index) lookup(id ID) (indexEntry, bool) {
	if e, ok := x.overlay[id]; ok {
		return e, true
	}
	for _, seg := range x.segs {
		if i := findIn(seg, id); i >= 0 {
			return seg[i].e, true
		}
	}
	if i := x.find(id); i >= 0 {
		return x.base[i].e, true
	}
	if x.spill != nil {
		for i := range x.csegs {
			if e, ok := x.findRun(&x.csegs[i], id); ok {
				return e, true
			}
		}
		return x.findRun(&x.cbase, id)
	}
	return indexEntry{}, false
}

// len is the number of distinct blobs known (a blob is in exactly one of map, segs, base).
func (x *index) len() int {
	n := len(x.base) + len(x.overlay) + x.cbase.n
	if x.load != nil {
		n += x.load.n
	}
	for _, s := range x.segs {
		n += len(s)
	}
	for _, s := range x.csegs {
		n += s.n
	}
	return n
}

// memBytes is what the index holds in memory for its blobs: sorted runs by capacity, the map at
// mapEntryBytes per blob, the spill file's unwritten records. Tests check it per blob.
func (x *index) memBytes() int {
	const sortedBytes = int(unsafe.Sizeof(sortedEntry{}))
	n := cap(x.base)*sortedBytes + x.cbase.bytes() + len(x.overlay)*mapEntryBytes
	if x.load != nil {
		n += x.load.memBytes()
	}
	for _, s := range x.segs {
		n += cap(s) * sortedBytes
	}
	for _, s := range x.csegs {
		n += s.bytes()
	}
	if x.spill != nil {
		n += cap(x.spill.tail)
	}
	return n
}

// mapEntryBytes is about what a blob in the map costs (key, value, Go's map overhead; measured
// ~100 bytes).
const mapEntryBytes = 100

// seal moves the blobs of packs that an index file now names from the map to a sorted segment.
func (x *index) seal(packs []indexedPack) {
	var seg []sortedEntry
	for _, p := range packs {
		num, ok := x.packNum[p.ID]
		if !ok {
			continue
		}
		for _, b := range p.Blobs {
			if e, ok := x.overlay[b.ID]; ok && e.pack == num {
				seg = append(seg, sortedEntry{id: b.ID, e: e})
				delete(x.overlay, b.ID)
			}
		}
	}
	// Maps keep their peak size, and deleted slots are only reclaimed by growing: over a long
	// run of small files the map kept ~3.7 MB for the ~20 000 blobs it ever held at once
	// (1.3 MB at 50 000 files, measured). What is left (the open packs' blobs) moves to a map
	// of its size, a few thousand entries copied per index file written.
	rest := make(map[ID]indexEntry, len(x.overlay))
	for id, e := range x.overlay {
		rest[id] = e
	}
	x.overlay = rest
	if len(seg) == 0 {
		return
	}
	if x.spill != nil {
		x.sealCompact(seg)
		return
	}
	slices.SortFunc(seg, func(a, b sortedEntry) int { return compareIDs(a.id, b.id) })
	x.base, x.segs = addRun(x.base, x.segs, seg, x.merge, func(s []sortedEntry) int { return len(s) })
}

// addRun adds a new sorted run to segs, merging the newest two whenever the newer is as big as
// the one before (so there are O(log n) runs and each blob is copied O(log n) times), and segs
// into base once a single run is as big as base. It returns the new base and segs.
func addRun[T any](base T, segs []T, run T, merge func(a, b T) T, size func(T) int) (T, []T) {
	segs = append(segs, run)
	for n := len(segs); n >= 2 && size(segs[n-1]) >= size(segs[n-2]); n = len(segs) {
		segs = append(segs[:n-2], merge(segs[n-2], segs[n-1]))
	}
	if n := len(segs); n == 1 && size(segs[0]) >= size(base) {
		return merge(base, segs[0]), nil
	}
	return base, segs
}

// merge merges two sorted runs, b the newer. A blob in both is one this run stored again because
// the older copy was marked damaged: the new copy is the one lookups give, the old one a dup.
func (x *index) merge(a, b []sortedEntry) []sortedEntry {
	out := make([]sortedEntry, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		switch c := compareIDs(a[0].id, b[0].id); {
		case c < 0:
			out, a = append(out, a[0]), a[1:]
		case c > 0:
			out, b = append(out, b[0]), b[1:]
		default:
			x.dups[a[0].id] = append([]indexEntry{a[0].e}, x.dups[a[0].id]...)
			out, a, b = append(out, b[0]), a[1:], b[1:]
		}
	}
	return append(append(out, a...), b...)
}
