package guestfs

import (
	"encoding/binary"
	"fmt"
)

// ext4 inline data (mke2fs -O inline_data): a small file's or directory's bytes live in the
// inode itself, the first 60 in i_block and the rest in the value of the in-inode extended
// attribute "system.data". Guests made with the feature store most small files this way, so
// refusing them (as this reader did) lost exactly the config files people restore most.

const (
	extXattrMagic      = 0xEA020000
	extXattrIndexSys   = 7 // the "system." name prefix
	extInlineBlockSize = 60
)

// inlineData returns the bytes of an inline-data inode: i_block followed by the system.data
// value, cut to the inode's size. raw is the whole on-disk inode. Every offset comes from the
// guest disk and is checked against raw before use.
func inlineData(num uint32, raw []byte, size int64) ([]byte, error) {
	if len(raw) < 100 {
		return nil, fmt.Errorf("inode %d: too short for inline data", num)
	}
	out := append([]byte(nil), raw[40:40+extInlineBlockSize]...)
	if size > extInlineBlockSize {
		v, err := inlineXattr(num, raw)
		if err != nil {
			return nil, err
		}
		out = append(out, v...)
	}
	if size > int64(len(out)) {
		return nil, fmt.Errorf("inode %d: %d bytes of inline data for a size of %d", num, len(out), size)
	}
	return out[:size], nil
}

// inlineXattr finds the value of system.data in the inode's extended attribute area, which
// starts after the fixed 128 bytes and i_extra_isize with a magic number; entry value offsets
// count from just after that magic.
func inlineXattr(num uint32, raw []byte) ([]byte, error) {
	if len(raw) <= 128+2 {
		return nil, fmt.Errorf("inode %d: inline data larger than i_block but no room for its attribute", num)
	}
	extra := int(binary.LittleEndian.Uint16(raw[128:]))
	start := 128 + extra
	if extra%4 != 0 || start+4 > len(raw) || binary.LittleEndian.Uint32(raw[start:]) != extXattrMagic {
		return nil, fmt.Errorf("inode %d: inline data's attribute area is missing or damaged", num)
	}
	area := raw[start+4:]
	for p := 0; p+16 <= len(area); {
		nameLen := int(area[p])
		if nameLen == 0 && binary.LittleEndian.Uint32(area[p:]) == 0 {
			break // the list ends with four zero bytes
		}
		index := area[p+1]
		offs := int(binary.LittleEndian.Uint16(area[p+2:]))
		inum := binary.LittleEndian.Uint32(area[p+4:])
		vsize := int(binary.LittleEndian.Uint32(area[p+8:]))
		if p+16+nameLen > len(area) {
			break
		}
		name := string(area[p+16 : p+16+nameLen])
		if index == extXattrIndexSys && name == "data" {
			if inum != 0 || offs+vsize > len(area) || vsize < 0 {
				return nil, fmt.Errorf("inode %d: inline data's attribute points outside the inode", num)
			}
			return area[offs : offs+vsize], nil
		}
		p += (16 + nameLen + 3) &^ 3
	}
	return nil, fmt.Errorf("inode %d: inline data has no system.data attribute", num)
}

// eachInlineEntry walks an inline directory: i_block holds the parent's inode number in its
// first 4 bytes, then entries; the system.data value, if any, holds more entries.
func eachInlineEntry(dir *extInode, fn func(name string, ino uint32) bool) error {
	data := dir.inline
	if len(data) < 4 {
		return fmt.Errorf("directory inode %d: inline data of %d bytes", dir.num, len(data))
	}
	first := min(len(data), extInlineBlockSize)
	for _, region := range [][]byte{data[4:first], data[first:]} {
		more, err := eachDirent(dir.num, region, 4, fn)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// eachDirent calls fn for the live entries of one linear run of directory entries b, which
// starts at byte base of the directory (for messages). It returns false when fn stopped it.
func eachDirent(num uint32, b []byte, base int64, fn func(name string, ino uint32) bool) (bool, error) {
	for p := 0; p+8 <= len(b); {
		ino := binary.LittleEndian.Uint32(b[p:])
		rec := int(binary.LittleEndian.Uint16(b[p+4:]))
		nl := int(b[p+6])
		if rec < 8 || rec%4 != 0 || p+rec > len(b) || 8+nl > rec {
			return false, fmt.Errorf("directory inode %d: entry at byte %d is damaged", num, base+int64(p))
		}
		if ino != 0 && nl > 0 {
			name := string(b[p+8 : p+8+nl])
			if name != "." && name != ".." && !fn(name, ino) {
				return false, nil
			}
		}
		p += rec
	}
	return true, nil
}
