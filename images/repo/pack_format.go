package repo

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Pack file layout (docs/repository-format.md has the full description):
//
//	blob 0 stored bytes | blob 1 | ... | header | trailer
//	header  = u8 version, u8 flags, u16 reserved, u32 count, count × entry
//	entry   = u8 type, u8 compression, u16 flags, u32 stored length, u32 raw length, 32-byte id
//	trailer = u32 header length, u32 CRC-32C of the header, "SFPK"
//
// Blobs follow each other from offset 0 without gaps, so offsets come from the stored lengths and
// a pack is readable (and the index rebuildable) from the pack alone. Little endian throughout.
const (
	packVersion       = 1
	packHeaderFixed   = 8
	packEntrySize     = 44
	packTrailerSize   = 12
	packMagic         = "SFPK"
	maxBlobsPerPack   = 1 << 20
	packTailReadAhead = 64 << 10 // one Load usually fetches trailer and header together
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// packEntry is one blob in a pack header. Flags bit blobFlagSealed means "stored bytes are
// nonce|ciphertext|tag"; it is set for every blob of an encrypted repository and no other. Bit
// blobFlagPatch means the plaintext is a patch of a whole blob (blob_patch.go).
type packEntry struct {
	Type        BlobType
	Compression uint8
	Flags       uint16
	Stored      uint32
	Raw         uint32
	ID          ID
}

// packBlob is a packEntry with its position in the pack.
type packBlob struct {
	packEntry
	Offset uint32
}

// packTailSize is the size of header and trailer of a pack of n blobs.
func packTailSize(n int, c *cryptor) int64 {
	return int64(packHeaderFixed + packEntrySize*n + c.overhead() + packTrailerSize)
}

// encodePackTail returns header and trailer for the entries, to be appended after the blobs.
// With a cryptor the header is sealed as one envelope (flags packFlagSealed inside it), so a
// store host learns neither blob ids nor how a pack divides into blobs; the trailer's length
// and CRC then cover the envelope.
func encodePackTail(entries []packEntry, c *cryptor) []byte {
	hlen := packHeaderFixed + packEntrySize*len(entries)
	b := make([]byte, hlen, hlen+packTrailerSize)
	b[0] = packVersion
	if c != nil {
		b[1] = packFlagSealed
	}
	binary.LittleEndian.PutUint32(b[4:], uint32(len(entries)))
	for i, e := range entries {
		p := b[packHeaderFixed+packEntrySize*i:]
		p[0] = byte(e.Type)
		p[1] = e.Compression
		binary.LittleEndian.PutUint16(p[2:], e.Flags)
		binary.LittleEndian.PutUint32(p[4:], e.Stored)
		binary.LittleEndian.PutUint32(p[8:], e.Raw)
		copy(p[12:44], e.ID[:])
	}
	if c != nil {
		b = c.seal(make([]byte, 0, hlen+sealOverhead+packTrailerSize), b, []byte(adPackHeader))
	}
	crc := crc32.Checksum(b, crcTable)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(b)))
	b = binary.LittleEndian.AppendUint32(b, crc)
	return append(b, packMagic...)
}

// packTailLen reads the trailer (the last 12 bytes of a pack) and returns how many bytes at the
// end of the pack hold header and trailer. overhead is the envelope size of a sealed header.
func packTailLen(trailer []byte, packSize int64, overhead int) (int64, error) {
	if len(trailer) < packTrailerSize || string(trailer[len(trailer)-4:]) != packMagic {
		return 0, fmt.Errorf("pack trailer: bad magic: %w", ErrCorrupt)
	}
	t := trailer[len(trailer)-packTrailerSize:]
	hlen := int64(binary.LittleEndian.Uint32(t))
	ov := int64(overhead)
	if hlen < packHeaderFixed+ov || hlen+packTrailerSize > packSize || (hlen-ov-packHeaderFixed)%packEntrySize != 0 {
		return 0, fmt.Errorf("pack trailer: header length %d does not fit a %d-byte pack: %w", hlen, packSize, ErrCorrupt)
	}
	return hlen + packTrailerSize, nil
}

// decodePackTail decodes the last bytes of a pack of packSize bytes. tail must hold at least
// header and trailer (packTailLen says how many); extra leading bytes are ignored. c opens a
// sealed header; nil means the repository is unencrypted and the header must be plain.
func decodePackTail(tail []byte, packSize int64, c *cryptor) ([]packBlob, error) {
	need, err := packTailLen(tail, packSize, c.overhead())
	if err != nil {
		return nil, err
	}
	if int64(len(tail)) < need {
		return nil, fmt.Errorf("pack header: have %d of %d bytes: %w", len(tail), need, ErrCorrupt)
	}
	t := tail[int64(len(tail))-need:]
	hlen := need - packTrailerSize
	hdr := t[:hlen]
	if crc := binary.LittleEndian.Uint32(t[hlen+4:]); crc != crc32.Checksum(hdr, crcTable) {
		return nil, fmt.Errorf("pack header: checksum mismatch: %w", ErrCorrupt)
	}
	wantFlags := byte(0)
	if c != nil {
		if hdr, err = c.open(nil, hdr, []byte(adPackHeader)); err != nil {
			return nil, fmt.Errorf("pack header: %w", err)
		}
		hlen = int64(len(hdr))
		wantFlags = packFlagSealed
	}
	if hdr[0] != packVersion {
		return nil, fmt.Errorf("pack header: version %d, want %d: %w", hdr[0], packVersion, ErrCorrupt)
	}
	if hdr[1] != wantFlags {
		return nil, fmt.Errorf("pack header: flags %#x, want %#x (an encrypted pack in a plain repository or the reverse): %w",
			hdr[1], wantFlags, ErrCorrupt)
	}
	n := int64(binary.LittleEndian.Uint32(hdr[4:]))
	if n > maxBlobsPerPack || packHeaderFixed+n*packEntrySize != hlen {
		return nil, fmt.Errorf("pack header: %d entries do not fit %d bytes: %w", n, hlen, ErrCorrupt)
	}
	blobs := make([]packBlob, n)
	var off int64
	for i := range blobs {
		p := hdr[packHeaderFixed+packEntrySize*int64(i):]
		e := packEntry{
			Type:        BlobType(p[0]),
			Compression: p[1],
			Flags:       binary.LittleEndian.Uint16(p[2:]),
			Stored:      binary.LittleEndian.Uint32(p[4:]),
			Raw:         binary.LittleEndian.Uint32(p[8:]),
		}
		copy(e.ID[:], p[12:44])
		if err := e.validate(); err != nil {
			return nil, fmt.Errorf("pack header entry %d: %w", i, err)
		}
		if err := c.checkSealed(e.Flags); err != nil {
			return nil, fmt.Errorf("pack header entry %d: %w", i, err)
		}
		if e.Flags&blobFlagDamaged != 0 {
			return nil, fmt.Errorf("pack header entry %d: the damaged flag belongs in index files: %w", i, ErrCorrupt)
		}
		blobs[i] = packBlob{packEntry: e, Offset: uint32(off)}
		off += int64(e.Stored)
	}
	if off != packSize-need {
		return nil, fmt.Errorf("pack header: blobs cover %d bytes, pack has %d before its header: %w",
			off, packSize-need, ErrCorrupt)
	}
	return blobs, nil
}

func (e *packEntry) validate() error {
	switch {
	case e.Type != DataBlob && e.Type != TreeBlob:
		return fmt.Errorf("blob %s: unknown type %d: %w", e.ID.Short(), e.Type, ErrCorrupt)
	case !knownCodec(e.Compression):
		return fmt.Errorf("blob %s: unknown compression %d: %w", e.ID.Short(), e.Compression, ErrCorrupt)
	case e.Flags&^(blobFlagSealed|blobFlagPatch|blobFlagDamaged) != 0:
		return fmt.Errorf("blob %s: flags %#x not supported: %w", e.ID.Short(), e.Flags, ErrCorrupt)
	case e.Flags&blobFlagPatch != 0 && (e.Type != DataBlob || e.Raw < patchHeaderSize):
		return fmt.Errorf("blob %s: a patch must be a data blob of at least %d bytes: %w", e.ID.Short(), patchHeaderSize, ErrCorrupt)
	case e.Raw > MaxBlobSize || e.Stored > MaxBlobSize+1024:
		return fmt.Errorf("blob %s: %d/%d bytes exceed the blob size limit: %w", e.ID.Short(), e.Stored, e.Raw, ErrCorrupt)
	case e.Compression == compressionNone && e.Stored != e.Raw+e.envelope():
		return fmt.Errorf("blob %s: stored raw but %d != %d+%d bytes: %w", e.ID.Short(), e.Stored, e.Raw, e.envelope(), ErrCorrupt)
	case e.Stored < e.envelope():
		return fmt.Errorf("blob %s: %d stored bytes cannot hold an envelope: %w", e.ID.Short(), e.Stored, ErrCorrupt)
	}
	return nil
}

// envelope is how many stored bytes the entry's encryption adds.
func (e *packEntry) envelope() uint32 {
	if e.Flags&blobFlagSealed != 0 {
		return sealOverhead
	}
	return 0
}
