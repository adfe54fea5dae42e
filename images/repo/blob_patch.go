package repo

import (
	"context"
	"encoding/binary"
	"fmt"
)

// Patch blobs (docs/repository-format.md, "Patch blobs"): a changed disk block stored as the
// sub-blocks that differ from an earlier whole blob, its base. The blob's id is the id of the
// whole rebuilt block, so block maps, snapshots and dedup see no difference; only the pack and
// index entry (Flags bit blobFlagPatch) and the in-memory index (compPatch) tell.
//
// Plaintext (before compression and sealing, which apply as for any blob), little endian:
//
//	"SFPT", u8 version (1), u8 reserved (0), u16 reserved (0), 32-byte base id,
//	u32 full block length, u32 sub-block size, u32 count, count × u32 sub-block index
//	(increasing), then the listed sub-blocks' bytes back to back (the last sub-block of a
//	block whose length is not a multiple of the sub-block size is short).
const (
	patchMagic      = "SFPT"
	patchVersion    = 1
	patchHeaderSize = 52

	// blobFlagPatch (pack header and index entry flags): the blob's plaintext is a patch.
	blobFlagPatch uint16 = 2
	// compPatch marks a patch in the in-memory index, whose entries keep no flags (memory per
	// blob counts): the high bit of indexEntry.comp, whose low bits are the compression.
	compPatch uint8 = 0x80

	// blobFlagDamaged (index entry flags only, never in a pack header): check --read-data
	// found this copy bad. Readers try other copies first and backups store the blob again
	// instead of deduplicating against it; repair removes it. compDamaged is its bit in
	// indexEntry.comp.
	blobFlagDamaged uint16 = 4
	compDamaged     uint8  = 0x40
	// compFlags are the bits of indexEntry.comp that are not the compression.
	compFlags = compPatch | compDamaged
)

// patch is a decoded patch plaintext; list and data point into it.
type patch struct {
	base  ID
	full  uint32 // length of the rebuilt block
	sub   uint32 // sub-block size
	count uint32
	list  []byte // count × u32 sub-block index
	data  []byte
}

func (p *patch) index(i uint32) uint32 { return binary.LittleEndian.Uint32(p.list[4*i:]) }

// parsePatch decodes and checks a patch plaintext, so that apply cannot go out of bounds.
func parsePatch(b []byte) (patch, error) {
	var p patch
	if len(b) < patchHeaderSize || string(b[:4]) != patchMagic {
		return p, fmt.Errorf("patch: bad magic: %w", ErrCorrupt)
	}
	if b[4] != patchVersion || b[5] != 0 || binary.LittleEndian.Uint16(b[6:]) != 0 {
		return p, fmt.Errorf("patch: version %d, reserved %d/%d: want version %d: %w",
			b[4], b[5], binary.LittleEndian.Uint16(b[6:]), patchVersion, ErrCorrupt)
	}
	copy(p.base[:], b[8:40])
	p.full = binary.LittleEndian.Uint32(b[40:])
	p.sub = binary.LittleEndian.Uint32(b[44:])
	p.count = binary.LittleEndian.Uint32(b[48:])
	if p.full == 0 || p.full > MaxBlobSize || p.sub == 0 {
		return p, fmt.Errorf("patch: block length %d, sub-block size %d: %w", p.full, p.sub, ErrCorrupt)
	}
	subs := (uint64(p.full) + uint64(p.sub) - 1) / uint64(p.sub)
	if uint64(p.count) > subs || uint64(len(b)) < patchHeaderSize+4*uint64(p.count) {
		return p, fmt.Errorf("patch: %d sub-blocks of a %d-sub-block block in %d bytes: %w", p.count, subs, len(b), ErrCorrupt)
	}
	p.list = b[patchHeaderSize : patchHeaderSize+4*p.count]
	p.data = b[patchHeaderSize+4*p.count:]
	var want uint64
	for i := uint32(0); i < p.count; i++ {
		k := uint64(p.index(i))
		if k >= subs || (i > 0 && k <= uint64(p.index(i-1))) {
			return p, fmt.Errorf("patch: sub-block list not increasing within %d sub-blocks: %w", subs, ErrCorrupt)
		}
		want += min(uint64(p.sub), uint64(p.full)-k*uint64(p.sub))
	}
	if uint64(len(p.data)) != want {
		return p, fmt.Errorf("patch: %d bytes of sub-blocks, the list needs %d: %w", len(p.data), want, ErrCorrupt)
	}
	return p, nil
}

// apply overlays the sub-blocks on block, which holds the base and is p.full bytes long.
func (p *patch) apply(block []byte) {
	pos := 0
	for i := uint32(0); i < p.count; i++ {
		off := int(p.index(i)) * int(p.sub)
		n := min(int(p.sub), int(p.full)-off)
		copy(block[off:off+n], p.data[pos:pos+n])
		pos += n
	}
}

// patchLen is the plaintext length of a patch of block listing changed.
func patchLen(block []byte, subSize int, changed []int) int {
	n := patchHeaderSize + 4*len(changed)
	for _, k := range changed {
		n += min(subSize, len(block)-k*subSize)
	}
	return n
}

// encodePatch appends the patch plaintext to dst. changed must be valid (checkChanged).
func encodePatch(dst []byte, base ID, block []byte, subSize int, changed []int) []byte {
	dst = append(dst, patchMagic...)
	dst = append(dst, patchVersion, 0, 0, 0)
	dst = append(dst, base[:]...)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(block)))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(subSize))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(changed)))
	for _, k := range changed {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(k))
	}
	for _, k := range changed {
		off := k * subSize
		dst = append(dst, block[off:min(off+subSize, len(block))]...)
	}
	return dst
}

// checkChanged validates SavePatch's arguments: a caller bug, reported instead of stored.
func checkChanged(block []byte, subSize int, changed []int) error {
	if subSize <= 0 || subSize > MaxBlobSize {
		return fmt.Errorf("sub-block size %d", subSize)
	}
	subs := (len(block) + subSize - 1) / subSize
	for i, k := range changed {
		if k < 0 || k >= subs || (i > 0 && k <= changed[i-1]) {
			return fmt.Errorf("changed sub-blocks %v: want increasing indexes below %d", changed, subs)
		}
	}
	return nil
}

// IsFullBlob reports whether id is stored, or queued in this run, as a whole blob.
func (r *Repository) IsFullBlob(id ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.idx.lookup(id)
	return ok && e.comp&compFlags == 0
}

var _ PatchStore = (*Repository)(nil)

// SavePatch stores block as a patch of base (PatchStore). The block is stored whole instead
// when the format has no patches, base is not a whole blob (missing, or itself a patch) of the
// block's length, or the patch would not be smaller than the block.
func (r *Repository) SavePatch(ctx context.Context, id, base ID, block []byte, subSize int, changed []int) (bool, error) {
	if len(block) > MaxBlobSize {
		return false, fmt.Errorf("save blob %s: %d bytes exceed the %d-byte blob limit", id.Short(), len(block), MaxBlobSize)
	}
	if err := checkChanged(block, subSize, changed); err != nil {
		return false, fmt.Errorf("save patch %s of %s: %w", id.Short(), base.Short(), err)
	}
	usable := r.PatchesEnabled() && id != base && len(changed) > 0 && patchLen(block, subSize, changed) < len(block)
	r.mu.Lock()
	if need, err := r.admitLocked(id); !need {
		r.mu.Unlock()
		return false, err
	}
	if usable {
		b, ok := r.idx.lookup(base)
		usable = ok && b.comp&compFlags == 0 && b.typ == DataBlob && int64(b.raw) == int64(len(block))
	}
	e := indexEntry{pack: pendingPack, typ: DataBlob, raw: uint32(len(block))}
	if usable {
		e.comp = compPatch // IsFullBlob says no at once, so no concurrent patch builds on this one
		e.raw = uint32(patchLen(block, subSize, changed))
	}
	r.idx.overlay[id] = e
	r.mu.Unlock()

	if !usable {
		return r.storeBlob(ctx, packEntry{Type: DataBlob, ID: id}, block)
	}
	plainp := r.getBuf()
	defer r.bufs.Put(plainp)
	plain := encodePatch((*plainp)[:0], base, block, subSize, changed)
	*plainp = plain[:0]
	added, err := r.storeBlob(ctx, packEntry{Type: DataBlob, ID: id, Flags: blobFlagPatch}, plain)
	if added {
		r.stats.blobsPatched.Add(1)
		r.stats.bytesPatched.Add(int64(len(plain)))
		r.stats.bytesPatchedWhole.Add(int64(len(block)))
	}
	return added, err
}

// rebuildPatch turns the plaintext of patch blob id into the block: it loads the base (a whole
// blob) into buf, overlays the sub-blocks and checks the result against id.
func (r *Repository) rebuildPatch(ctx context.Context, id ID, plain, buf []byte) ([]byte, error) {
	p, err := parsePatch(plain)
	if err != nil {
		return nil, err
	}
	if p.base == id {
		return nil, fmt.Errorf("patch names itself as its base: %w", ErrCorrupt)
	}
	be, pack, err := r.locate(DataBlob, p.base)
	if err != nil {
		return nil, fmt.Errorf("patch of base %s: %w", p.base.Short(), err)
	}
	if be.comp&compPatch != 0 {
		return nil, fmt.Errorf("its base %s is itself a patch (a base must be a whole blob): %w", p.base.Short(), ErrCorrupt)
	}
	out, err := r.tryCopies(ctx, p.base, be, pack, func(e indexEntry, pack ID) ([]byte, error) {
		if e.comp&compPatch != 0 {
			return nil, fmt.Errorf("copy in pack %s is a patch: %w", pack.Short(), ErrCorrupt)
		}
		return r.loadEntry(ctx, p.base, e, pack, buf)
	})
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", p.base.Short(), err)
	}
	if len(out) != int(p.full) {
		return nil, fmt.Errorf("base %s has %d bytes, the patch is for %d: %w", p.base.Short(), len(out), p.full, ErrCorrupt)
	}
	p.apply(out)
	if r.crypt.blobID(out) != id {
		return nil, fmt.Errorf("block rebuilt from base %s does not match its id: %w", p.base.Short(), ErrCorrupt)
	}
	return out, nil
}

// patchBase reads the base id of patch blob id without rebuilding it.
func (r *Repository) patchBase(ctx context.Context, id ID) (ID, error) {
	e, pack, err := r.locate(DataBlob, id)
	if err != nil {
		return ID{}, err
	}
	if e.comp&compPatch == 0 {
		return ID{}, fmt.Errorf("blob %s is not a patch", id.Short())
	}
	return r.patchBaseOf(ctx, id, e, pack)
}

// patchBaseOf reads the base id of the patch copy e (in pack) of blob id.
func (r *Repository) patchBaseOf(ctx context.Context, id ID, e indexEntry, pack ID) (ID, error) {
	plainp := r.getBuf()
	defer r.bufs.Put(plainp)
	plain, err := r.loadEntry(ctx, id, e, pack, (*plainp)[:0])
	if err != nil {
		return ID{}, err
	}
	*plainp = plain[:0]
	p, err := parsePatch(plain)
	if err != nil {
		return ID{}, fmt.Errorf("load blob %s from pack %s: %w", id.Short(), pack.Short(), err)
	}
	return p.base, nil
}
