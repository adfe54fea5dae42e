package repo

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Index file layout (little endian), name = BLAKE3-256 of the whole file:
//
//	"SFIX", u16 version, u16 flags (0; reserved for encryption), u32 pack count
//	per pack: 32-byte pack id, u32 blob count, count × (u8 type, u8 compression, u16 flags,
//	          u32 offset, u32 stored length, u32 raw length, 32-byte blob id)
const (
	indexMagic     = "SFIX"
	indexVersion   = 1
	indexEntrySize = 48
)

// indexedPack is one pack's part of an index file.
type indexedPack struct {
	ID    ID
	Blobs []packBlob
}

func encodeIndexFile(packs []indexedPack) []byte {
	size := 12
	for _, p := range packs {
		size += 36 + indexEntrySize*len(p.Blobs)
	}
	b := make([]byte, 12, size)
	copy(b, indexMagic)
	binary.LittleEndian.PutUint16(b[4:], indexVersion)
	binary.LittleEndian.PutUint32(b[8:], uint32(len(packs)))
	var e [indexEntrySize]byte
	for _, p := range packs {
		b = append(b, p.ID[:]...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p.Blobs)))
		for _, bl := range p.Blobs {
			e[0] = byte(bl.Type)
			e[1] = bl.Compression
			binary.LittleEndian.PutUint16(e[2:], bl.Flags)
			binary.LittleEndian.PutUint32(e[4:], bl.Offset)
			binary.LittleEndian.PutUint32(e[8:], bl.Stored)
			binary.LittleEndian.PutUint32(e[12:], bl.Raw)
			copy(e[16:], bl.ID[:])
			b = append(b, e[:]...)
		}
	}
	return b
}

// decodeIndexFile calls fn for every pack in an index file. The Blobs slice is reused between
// calls: fn must copy what it keeps.
func decodeIndexFile(b []byte, fn func(p indexedPack) error) error {
	if len(b) < 12 || string(b[:4]) != indexMagic {
		return fmt.Errorf("index file: bad magic: %w", ErrCorrupt)
	}
	if v := binary.LittleEndian.Uint16(b[4:]); v != indexVersion {
		return fmt.Errorf("index file: version %d, want %d: %w", v, indexVersion, ErrCorrupt)
	}
	if f := binary.LittleEndian.Uint16(b[6:]); f != 0 {
		return fmt.Errorf("index file: flags %#x (encrypted?) not supported: %w", f, ErrCorrupt)
	}
	n := binary.LittleEndian.Uint32(b[8:])
	b = b[12:]
	var blobs []packBlob
	for i := uint32(0); i < n; i++ {
		if len(b) < 36 {
			return fmt.Errorf("index file: pack %d truncated: %w", i, ErrCorrupt)
		}
		var p indexedPack
		copy(p.ID[:], b)
		count := uint64(binary.LittleEndian.Uint32(b[32:]))
		b = b[36:]
		if uint64(len(b)) < count*indexEntrySize {
			return fmt.Errorf("index file: pack %s: %d blobs truncated: %w", p.ID.Short(), count, ErrCorrupt)
		}
		blobs = slices.Grow(blobs[:0], int(count)) // count is bounded by the bytes checked above
		for j := uint64(0); j < count; j++ {
			e := b[j*indexEntrySize:]
			bl := packBlob{Offset: binary.LittleEndian.Uint32(e[4:])}
			bl.Type = BlobType(e[0])
			bl.Compression = e[1]
			bl.Flags = binary.LittleEndian.Uint16(e[2:])
			bl.Stored = binary.LittleEndian.Uint32(e[8:])
			bl.Raw = binary.LittleEndian.Uint32(e[12:])
			copy(bl.ID[:], e[16:48])
			if err := bl.validate(); err != nil {
				return fmt.Errorf("index file: pack %s: %w", p.ID.Short(), err)
			}
			blobs = append(blobs, bl)
		}
		b = b[count*indexEntrySize:]
		p.Blobs = blobs
		if err := fn(p); err != nil {
			return err
		}
	}
	if len(b) != 0 {
		return fmt.Errorf("index file: %d trailing bytes: %w", len(b), ErrCorrupt)
	}
	return nil
}
