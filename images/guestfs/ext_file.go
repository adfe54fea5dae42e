package guestfs

import (
	"encoding/binary"
	"fmt"
	"io"
)

// extFile reads an inode's data: through its extent tree or its block map, one block at a
// time, holes and unwritten extents as zeros. Nothing per block is kept, so memory does not
// grow with the file.
type extFile struct {
	e  *extFS
	in *extInode
}

func (f *extFile) Size() int64  { return f.in.size }
func (f *extFile) Close() error { return nil }

func (f *extFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset")
	}
	if f.in.inline != nil {
		if off >= int64(len(f.in.inline)) {
			return 0, io.EOF
		}
		n := copy(p, f.in.inline[off:])
		if n < len(p) {
			return n, io.EOF
		}
		return n, nil
	}
	n := 0
	bs := f.e.bs
	for len(p) > 0 {
		if off >= f.in.size {
			return n, io.EOF
		}
		lblk := off / bs
		in := off % bs
		k := min(int64(len(p)), bs-in, f.in.size-off)
		phys, err := f.physical(lblk)
		if err != nil {
			return n, fmt.Errorf("inode %d block %d: %w", f.in.num, lblk, err)
		}
		if phys == 0 {
			clear(p[:k])
		} else if _, err := f.e.r.ReadAt(p[:k], int64(phys)*bs+in); err != nil {
			return n, fmt.Errorf("inode %d block %d: %w", f.in.num, lblk, err)
		}
		n += int(k)
		p, off = p[k:], off+k
	}
	return n, nil
}

// physical maps a logical block to its block on the volume; 0 is a hole (or unwritten).
func (f *extFile) physical(lblk int64) (uint64, error) {
	if lblk > 1<<32 {
		return 0, fmt.Errorf("past the largest ext file")
	}
	var phys uint64
	var err error
	if f.in.flags&extFlagExtents != 0 {
		phys, err = f.e.extentLookup(f.in.block[:], uint32(lblk))
	} else {
		phys, err = f.e.blockMapLookup(f.in.block[:], uint32(lblk))
	}
	if err == nil && phys >= f.e.blockCount {
		return 0, fmt.Errorf("points at block %d, past the file system's %d", phys, f.e.blockCount)
	}
	return phys, err
}

const extMaxDepth = 5 // the kernel's own limit for extent trees

// extentLookup descends the extent tree rooted in node (i_block) to the leaf covering lblk.
func (e *extFS) extentLookup(node []byte, lblk uint32) (uint64, error) {
	for depth := 0; ; depth++ {
		if len(node) < 12 || binary.LittleEndian.Uint16(node) != 0xF30A {
			return 0, fmt.Errorf("extent node has a bad magic")
		}
		entries := int(binary.LittleEndian.Uint16(node[2:]))
		d := binary.LittleEndian.Uint16(node[6:])
		if 12+12*entries > len(node) || int(d) > extMaxDepth-depth {
			return 0, fmt.Errorf("extent node (%d entries, depth %d) is damaged", entries, d)
		}
		// The last entry starting at or before lblk.
		i := -1
		for j := range entries {
			if binary.LittleEndian.Uint32(node[12+12*j:]) > lblk {
				break
			}
			i = j
		}
		if i < 0 {
			return 0, nil
		}
		ent := node[12+12*i:]
		if d == 0 {
			start := binary.LittleEndian.Uint32(ent)
			l := uint32(binary.LittleEndian.Uint16(ent[4:]))
			unwritten := l > 32768
			if unwritten {
				l -= 32768
			}
			if lblk >= start+l || unwritten {
				return 0, nil
			}
			pstart := uint64(binary.LittleEndian.Uint16(ent[6:]))<<32 | uint64(binary.LittleEndian.Uint32(ent[8:]))
			return pstart + uint64(lblk-start), nil
		}
		child := uint64(binary.LittleEndian.Uint16(ent[8:]))<<32 | uint64(binary.LittleEndian.Uint32(ent[4:]))
		if child == 0 || child >= e.blockCount {
			return 0, fmt.Errorf("extent index points at block %d", child)
		}
		node = make([]byte, e.bs)
		if _, err := e.r.ReadAt(node, int64(child)*e.bs); err != nil {
			return 0, err
		}
	}
}

// blockMapLookup follows ext2/3's direct, indirect, double and triple indirect block pointers.
func (e *extFS) blockMapLookup(iblock []byte, lblk uint32) (uint64, error) {
	per := uint64(e.bs / 4)
	l := uint64(lblk)
	ptr := func(b []byte, i uint64) uint64 { return uint64(binary.LittleEndian.Uint32(b[4*i:])) }
	if l < 12 {
		return ptr(iblock, l), nil
	}
	l -= 12
	var levels int
	var top uint64
	switch {
	case l < per:
		levels, top = 1, ptr(iblock, 12)
	case l-per < per*per:
		l -= per
		levels, top = 2, ptr(iblock, 13)
	default:
		l -= per + per*per
		if l >= per*per*per {
			return 0, fmt.Errorf("past the block map")
		}
		levels, top = 3, ptr(iblock, 14)
	}
	blk := make([]byte, e.bs)
	for lv := levels; lv > 0; lv-- {
		if top == 0 {
			return 0, nil
		}
		if top >= e.blockCount {
			return 0, fmt.Errorf("indirect block %d is past the file system", top)
		}
		if _, err := e.r.ReadAt(blk, int64(top)*e.bs); err != nil {
			return 0, err
		}
		div := uint64(1)
		for range lv - 1 {
			div *= per
		}
		top = ptr(blk, (l/div)%per)
	}
	return top, nil
}
