package repo

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// MapChunkBlocks is how many consecutive blocks one block-map chunk covers. A disk's block map is
// a list of chunk ids, never one big object, so memory stays flat as disks grow: 4096 blocks of
// 1 MiB is 4 GiB of disk per 128 KiB chunk, and a 2 TiB disk's snapshot names 512 chunks.
const MapChunkBlocks = 4096

var blockMapMagic = [4]byte{'S', 'F', 'B', 'M'}

const blockMapVersion = 1

// BlockMapChunk lists the blob ids of blocks First .. First+len(IDs)-1 of a disk. A zero ID is a
// hole (never written, or all zeros): restore leaves it unallocated.
type BlockMapChunk struct {
	First uint64
	IDs   []ID
}

// MarshalBinary encodes: magic "SFBM", u16 version, u16 reserved, u64 first, u32 count, then
// count 32-byte ids. Little endian. Holes are zero ids and compress to almost nothing.
func (c *BlockMapChunk) MarshalBinary() ([]byte, error) {
	buf := make([]byte, 20+32*len(c.IDs))
	copy(buf, blockMapMagic[:])
	binary.LittleEndian.PutUint16(buf[4:], blockMapVersion)
	binary.LittleEndian.PutUint64(buf[8:], c.First)
	binary.LittleEndian.PutUint32(buf[16:], uint32(len(c.IDs)))
	for i, id := range c.IDs {
		copy(buf[20+32*i:], id[:])
	}
	return buf, nil
}

// UnmarshalBinary decodes a chunk written by MarshalBinary, rejecting anything malformed.
func (c *BlockMapChunk) UnmarshalBinary(b []byte) error {
	if len(b) < 20 || [4]byte(b[:4]) != blockMapMagic {
		return errors.New("block map chunk: bad magic")
	}
	if v := binary.LittleEndian.Uint16(b[4:]); v != blockMapVersion {
		return fmt.Errorf("block map chunk: unsupported version %d", v)
	}
	// Reserved bits must be zero, so one chunk has one encoding (found by FuzzBlockMapChunk)
	// and a future use of the field is not silently ignored by this reader.
	if r := binary.LittleEndian.Uint16(b[6:]); r != 0 {
		return fmt.Errorf("block map chunk: reserved field %#x is not zero", r)
	}
	n := binary.LittleEndian.Uint32(b[16:])
	if n > MapChunkBlocks || uint64(len(b)) != 20+32*uint64(n) {
		return fmt.Errorf("block map chunk: %d ids do not fit %d bytes", n, len(b))
	}
	c.First = binary.LittleEndian.Uint64(b[8:])
	c.IDs = make([]ID, n)
	for i := range c.IDs {
		copy(c.IDs[i][:], b[20+32*i:])
	}
	return nil
}
