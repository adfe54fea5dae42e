package repo

import (
	"bytes"
	"slices"
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

// index is the in-memory blob index: a sorted slice for everything loaded at Open (52 bytes per
// blob, binary search) and a map for blobs added by this run. Two structures because sorting on
// every insert is too slow and a map costs ~100 bytes per blob: the many loaded blobs get the
// compact form, the few new ones the convenient one. Not safe for concurrent use; Repository
// guards it with its mutex.
type index struct {
	packs   []ID
	packNum map[ID]uint32
	base    []sortedEntry
	overlay map[ID]indexEntry
}

func newIndex() *index {
	return &index{packNum: map[ID]uint32{}, overlay: map[ID]indexEntry{}}
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

// appendBase adds loaded entries; call sortBase once after the last.
func (x *index) appendBase(pack ID, blobs []packBlob) {
	n := x.addPack(pack)
	for _, b := range blobs {
		x.base = append(x.base, sortedEntry{id: b.ID, e: entryOf(n, b)})
	}
}

func entryOf(pack uint32, b packBlob) indexEntry {
	return indexEntry{pack: pack, offset: b.Offset, stored: b.Stored, raw: b.Raw, typ: b.Type, comp: b.Compression}
}

// sortBase sorts and removes duplicate blobs (the same blob in two packs, left by concurrent
// writers or an interrupted prune): the first pack listed wins.
func (x *index) sortBase() {
	slices.SortStableFunc(x.base, func(a, b sortedEntry) int { return compareIDs(a.id, b.id) })
	x.base = slices.CompactFunc(x.base, func(a, b sortedEntry) bool { return a.id == b.id })
	x.base = slices.Clip(x.base)
}

// find returns the position of id in base, or -1.
func (x *index) find(id ID) int {
	i, ok := slices.BinarySearchFunc(x.base, id, func(e sortedEntry, id ID) int { return bytes.Compare(e.id[:], id[:]) })
	if !ok {
		return -1
	}
	return i
}

func (x *index) lookup(id ID) (indexEntry, bool) {
	if e, ok := x.overlay[id]; ok {
		return e, true
	}
	if i := x.find(id); i >= 0 {
		return x.base[i].e, true
	}
	return indexEntry{}, false
}

// len is the number of distinct blobs known (overlay entries are never in base).
func (x *index) len() int { return len(x.base) + len(x.overlay) }
