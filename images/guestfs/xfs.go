package guestfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// xfsFS reads XFS (v4 and v5 on-disk formats). It is written here because the one pure-Go
// reader, masahiro331/go-xfs-filesystem, allocates what the image says (a block count times the
// block size, an entry per block of every file) before checking it, so a damaged image can
// exhaust memory, which no recover catches. Read-only XFS needs: the superblock, inodes by
// number, data forks in the local, extents and B+tree formats, and three directory formats
// (short form in the inode, single block, and leaf/node, whose data blocks are all read here).
type xfsFS struct {
	r          io.ReaderAt
	size       int64
	bs         int64 // block size
	dirBS      int64 // directory block size
	agBlocks   uint64
	agCount    uint64
	agBlkLog   uint
	inoPBLog   uint
	inodeSize  int64
	rootIno    uint64
	v5         bool
	ftype      bool
	bigtime    bool
	dataBlocks uint64
	dirs       dirCache
}

func openXFS(r io.ReaderAt, size int64) (FS, error) {
	sb := make([]byte, 512)
	if _, err := r.ReadAt(sb, 0); err != nil {
		return nil, fmt.Errorf("read superblock: %w", err)
	}
	be16 := func(o int) uint64 { return uint64(binary.BigEndian.Uint16(sb[o:])) }
	be32 := func(o int) uint64 { return uint64(binary.BigEndian.Uint32(sb[o:])) }
	be64 := func(o int) uint64 { return binary.BigEndian.Uint64(sb[o:]) }
	if string(sb[:4]) != "XFSB" {
		return nil, errors.New("no XFS superblock")
	}
	x := &xfsFS{r: r, size: size, bs: int64(be32(4)), dataBlocks: be64(8), rootIno: be64(56),
		agBlocks: be32(84), agCount: be32(88), inodeSize: int64(be16(104)),
		agBlkLog: uint(sb[124]), inoPBLog: uint(sb[123])}
	version := be16(100) & 0xF
	x.v5 = version == 5
	if x.v5 {
		incompat := be32(216)
		x.ftype = incompat&0x1 != 0
		x.bigtime = incompat&0x8 != 0
	} else if be16(100)&0x8000 != 0 { // MOREBITS: features2 is valid
		x.ftype = be32(200)&0x200 != 0
	}
	dirLog := uint(sb[192])
	switch {
	case x.bs < 512 || x.bs > 65536 || x.bs&(x.bs-1) != 0:
		return nil, fmt.Errorf("block size %d is invalid", x.bs)
	case x.inodeSize < 256 && x.v5 || x.inodeSize < 128 || x.inodeSize > x.bs || x.inodeSize&(x.inodeSize-1) != 0:
		return nil, fmt.Errorf("inode size %d is invalid", x.inodeSize)
	case x.agBlocks == 0 || x.agCount == 0 || x.agBlkLog > 31 || x.inoPBLog > 8 || dirLog > 8:
		return nil, errors.New("allocation group geometry is invalid")
	case int64(1)<<x.inoPBLog != x.bs/x.inodeSize:
		return nil, errors.New("inodes per block do not match the block and inode sizes")
	}
	x.dirBS = x.bs << dirLog
	if x.dirBS > 1<<20 {
		return nil, fmt.Errorf("directory block size %d is invalid", x.dirBS)
	}
	if _, err := x.inode(x.rootIno); err != nil {
		return nil, fmt.Errorf("root directory: %w", err)
	}
	return x, nil
}

func (x *xfsFS) Type() string { return "xfs" }

// xfsInode is the part of an inode this reader uses.
type xfsInode struct {
	num    uint64
	mode   uint16
	format byte // 1 local, 2 extents, 3 btree
	nlink  uint32
	size   int64
	mtime  time.Time
	nexts  uint32
	fork   []byte // the data fork
}

func (x *xfsFS) fsblockToByte(fsb uint64) (int64, error) {
	ag, agb := fsb>>x.agBlkLog, fsb&(1<<x.agBlkLog-1)
	if ag >= x.agCount || agb >= x.agBlocks {
		return 0, fmt.Errorf("block %#x is outside the file system", fsb)
	}
	return int64(ag*x.agBlocks+agb) * x.bs, nil
}

func (x *xfsFS) inode(ino uint64) (*xfsInode, error) {
	agIno := x.agBlkLog + x.inoPBLog
	blk := (ino >> x.inoPBLog) & (1<<x.agBlkLog - 1)
	ag := ino >> agIno
	off := int64(ino & (1<<x.inoPBLog - 1))
	if ag >= x.agCount || blk >= x.agBlocks {
		return nil, fmt.Errorf("inode %d is outside the file system", ino)
	}
	raw := make([]byte, x.inodeSize)
	if _, err := x.r.ReadAt(raw, int64(ag*x.agBlocks+blk)*x.bs+off*x.inodeSize); err != nil {
		return nil, fmt.Errorf("read inode %d: %w", ino, err)
	}
	if string(raw[:2]) != "IN" {
		return nil, fmt.Errorf("inode %d has a bad magic", ino)
	}
	in := &xfsInode{num: ino, mode: binary.BigEndian.Uint16(raw[2:]), format: raw[5],
		nlink: binary.BigEndian.Uint32(raw[16:]), size: int64(binary.BigEndian.Uint64(raw[56:])),
		nexts: binary.BigEndian.Uint32(raw[76:])}
	if raw[4] == 1 {
		in.nlink = uint32(binary.BigEndian.Uint16(raw[6:]))
	}
	if in.size < 0 {
		return nil, fmt.Errorf("inode %d: size is negative", ino)
	}
	core := int64(100)
	if raw[4] >= 3 {
		core = 176
	}
	ts := binary.BigEndian.Uint64(raw[40:])
	flags2 := uint64(0)
	if raw[4] >= 3 {
		flags2 = binary.BigEndian.Uint64(raw[120:])
	}
	if flags2&0x8 != 0 { // bigtime: nanoseconds since 1901-12-13T20:45:52Z
		in.mtime = time.Unix(int64(ts/1e9)-(1<<31), int64(ts%1e9))
	} else {
		in.mtime = time.Unix(int64(int32(ts>>32)), int64(min(uint32(ts), 999999999)))
	}
	forkEnd := x.inodeSize
	if fo := int64(raw[82]); fo != 0 {
		forkEnd = core + fo*8
	}
	if forkEnd <= core || forkEnd > x.inodeSize {
		return nil, fmt.Errorf("inode %d: fork offset is invalid", ino)
	}
	in.fork = raw[core:forkEnd]
	return in, nil
}

// xfsExtent maps file blocks [off, off+n) to the fs block start; unwritten extents read as zeros.
type xfsExtent struct {
	off, start, n uint64
	unwritten     bool
}

func unpackExtent(b []byte) xfsExtent {
	hi, lo := binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])
	return xfsExtent{
		unwritten: hi>>63 != 0,
		off:       (hi >> 9) & (1<<54 - 1),
		start:     (hi&0x1FF)<<43 | lo>>21,
		n:         lo & (1<<21 - 1),
	}
}

// maxXFSExtents bounds an inode's extent list (the records are 16 bytes each; 4 Mi records is a
// 64 MiB list, far past anything fragmentation produces).
const maxXFSExtents = 4 << 20

// extents returns the extent list of an inode's data fork (extents or B+tree format).
func (x *xfsFS) extents(in *xfsInode) ([]xfsExtent, error) {
	switch in.format {
	case 2:
		if int64(in.nexts)*16 > int64(len(in.fork)) {
			return nil, fmt.Errorf("inode %d: %d extents do not fit its fork", in.num, in.nexts)
		}
		out := make([]xfsExtent, in.nexts)
		for i := range out {
			out[i] = unpackExtent(in.fork[16*i:])
		}
		return out, nil
	case 3:
		return x.btreeExtents(in)
	}
	return nil, fmt.Errorf("inode %d: data fork format %d has no extents", in.num, in.format)
}

// btreeExtents walks a B+tree data fork: the root in the inode holds keys and pointers; the
// leaves, chained left to right, hold the extent records.
func (x *xfsFS) btreeExtents(in *xfsInode) ([]xfsExtent, error) {
	f := in.fork
	if len(f) < 4 {
		return nil, fmt.Errorf("inode %d: btree root too small", in.num)
	}
	level, nrecs := binary.BigEndian.Uint16(f), int(binary.BigEndian.Uint16(f[2:]))
	maxr := (len(f) - 4) / 16
	if level == 0 || level > 9 || nrecs == 0 || nrecs > maxr {
		return nil, fmt.Errorf("inode %d: btree root (level %d, %d records) is damaged", in.num, level, nrecs)
	}
	ptr := binary.BigEndian.Uint64(f[4+maxr*8:]) // leftmost child
	hdr := 24
	if x.v5 {
		hdr = 72
	}
	blk := make([]byte, x.bs)
	// Down the left edge to the first leaf.
	for l := int(level); l > 0; l-- {
		off, err := x.fsblockToByte(ptr)
		if err != nil {
			return nil, err
		}
		if _, err := x.r.ReadAt(blk, off); err != nil {
			return nil, err
		}
		if m := string(blk[:4]); m != "BMAP" && m != "BMA3" {
			return nil, fmt.Errorf("inode %d: btree block has a bad magic", in.num)
		}
		if int(binary.BigEndian.Uint16(blk[4:])) != l-1 {
			return nil, fmt.Errorf("inode %d: btree levels are inconsistent", in.num)
		}
		if l-1 == 0 {
			break
		}
		n := int(binary.BigEndian.Uint16(blk[6:]))
		maxn := (int(x.bs) - hdr) / 16
		if n == 0 || n > maxn {
			return nil, fmt.Errorf("inode %d: btree node is damaged", in.num)
		}
		ptr = binary.BigEndian.Uint64(blk[hdr+maxn*8:])
	}
	var out []xfsExtent
	for visited := 0; ; visited++ {
		n := int(binary.BigEndian.Uint16(blk[6:]))
		if hdr+n*16 > len(blk) || len(out)+n > maxXFSExtents || visited > maxXFSExtents {
			return nil, fmt.Errorf("inode %d: btree leaf is damaged", in.num)
		}
		for i := range n {
			out = append(out, unpackExtent(blk[hdr+16*i:]))
		}
		right := binary.BigEndian.Uint64(blk[16:]) // long-format header: magic, level, numrecs, left, right
		if right == ^uint64(0) {
			return out, nil
		}
		off, err := x.fsblockToByte(right)
		if err != nil {
			return nil, err
		}
		if _, err := x.r.ReadAt(blk, off); err != nil {
			return nil, err
		}
		if m := string(blk[:4]); m != "BMAP" && m != "BMA3" || binary.BigEndian.Uint16(blk[4:]) != 0 {
			return nil, fmt.Errorf("inode %d: btree leaf chain is damaged", in.num)
		}
	}
}
