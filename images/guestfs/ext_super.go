package guestfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"
)

// extFS reads ext2, ext3 and ext4. It is written here rather than taken from a library because
// the two pure-Go readers we tried fall short on real guest disks: go-diskfs (v1.9.4) reads a
// sparse file's holes from the wrong place (a file written with holes came back wrong from byte
// 0) and drops permissions from directory listings; masahiro331/go-ext4-filesystem keeps a map
// entry per block of every open file (memory grows with file size), follows symlinks inside
// Open without a bound (a link loop recurses forever) and hides inode numbers (no hard links).
// Read-only ext is small: superblock, group descriptors, inodes, extent trees or block maps,
// and linear directory blocks (an htree directory's index blocks parse as empty entries).
type extFS struct {
	r          io.ReaderAt
	size       int64
	bs         int64  // block size
	ipg        uint32 // inodes per group
	inodes     uint32
	inodeSize  int64
	descSize   int64
	gdtOff     int64
	groups     uint32
	incompat   uint32
	blockCount uint64
	dirs       dirCache
}

// ext feature and inode flag bits used here.
const (
	extIncompat64bit   = 0x80
	extIncompatInline  = 0x8000
	extFlagExtents     = 0x80000
	extFlagInline      = 0x10000000
	extRootInode       = 2
	extMaxDirBytes     = 256 << 20 // a directory larger than this is damage, not a real directory
	extMaxSymlinkBytes = 4096
)

func openExt(r io.ReaderAt, size int64) (FS, error) {
	sb := make([]byte, 1024)
	if _, err := r.ReadAt(sb, 1024); err != nil {
		return nil, fmt.Errorf("read superblock: %w", err)
	}
	le16 := func(o int) uint32 { return uint32(binary.LittleEndian.Uint16(sb[o:])) }
	le32 := func(o int) uint32 { return binary.LittleEndian.Uint32(sb[o:]) }
	if le16(56) != 0xEF53 {
		return nil, errors.New("no ext superblock")
	}
	logBS := le32(24)
	if logBS > 6 {
		return nil, fmt.Errorf("block size 2^%d KiB is invalid", logBS)
	}
	e := &extFS{r: r, size: size, bs: 1024 << logBS, ipg: le32(40), inodes: le32(0), incompat: le32(96)}
	e.blockCount = uint64(le32(4))
	e.inodeSize = 128
	if le32(76) >= 1 {
		e.inodeSize = int64(le16(88))
	}
	e.descSize = 32
	if e.incompat&extIncompat64bit != 0 {
		e.blockCount |= uint64(le32(0x150)) << 32
		e.descSize = int64(le16(254))
	}
	bpg := le32(32)
	switch {
	case e.inodeSize < 128 || e.inodeSize > e.bs || e.inodeSize&(e.inodeSize-1) != 0:
		return nil, fmt.Errorf("inode size %d is invalid", e.inodeSize)
	case e.descSize < 32 || e.descSize > 1024:
		return nil, fmt.Errorf("group descriptor size %d is invalid", e.descSize)
	case e.ipg == 0 || bpg == 0 || e.inodes == 0:
		return nil, errors.New("superblock has zero inodes or blocks per group")
	}
	e.groups = (e.inodes + e.ipg - 1) / e.ipg
	e.gdtOff = (int64(le32(20)) + 1) * e.bs
	if int64(e.groups)*e.descSize > size-e.gdtOff {
		return nil, fmt.Errorf("%d group descriptors do not fit the volume", e.groups)
	}
	if _, err := e.inode(extRootInode); err != nil {
		return nil, fmt.Errorf("root directory: %w", err)
	}
	return e, nil
}

func (e *extFS) Type() string { return "ext" }

// extInode is the part of an inode this reader uses.
type extInode struct {
	num    uint32
	mode   uint16
	size   int64
	nlink  uint16
	flags  uint32
	mtime  time.Time
	block  [60]byte // i_block: extent tree root, block map, or a fast symlink's target
	blocks uint32   // i_blocks_lo, 512-byte units
	inline []byte   // the data of an inline-data inode (ext_inline.go), else nil
}

func (e *extFS) inode(n uint32) (*extInode, error) {
	if n == 0 || n > e.inodes {
		return nil, fmt.Errorf("inode %d out of range (1..%d)", n, e.inodes)
	}
	g, idx := (n-1)/e.ipg, int64((n-1)%e.ipg)
	desc := make([]byte, e.descSize)
	if _, err := e.r.ReadAt(desc, e.gdtOff+int64(g)*e.descSize); err != nil {
		return nil, fmt.Errorf("read group descriptor %d: %w", g, err)
	}
	table := uint64(binary.LittleEndian.Uint32(desc[8:]))
	if e.descSize >= 64 {
		table |= uint64(binary.LittleEndian.Uint32(desc[0x28:])) << 32
	}
	if table == 0 || table >= e.blockCount {
		return nil, fmt.Errorf("inode table of group %d at block %d is outside the file system", g, table)
	}
	raw := make([]byte, e.inodeSize)
	if _, err := e.r.ReadAt(raw, int64(table)*e.bs+idx*e.inodeSize); err != nil {
		return nil, fmt.Errorf("read inode %d: %w", n, err)
	}
	in := &extInode{
		num:    n,
		mode:   binary.LittleEndian.Uint16(raw[0:]),
		size:   int64(binary.LittleEndian.Uint32(raw[4:])) | int64(binary.LittleEndian.Uint32(raw[108:]))<<32,
		nlink:  binary.LittleEndian.Uint16(raw[26:]),
		flags:  binary.LittleEndian.Uint32(raw[32:]),
		blocks: binary.LittleEndian.Uint32(raw[28:]),
	}
	if in.size < 0 {
		return nil, fmt.Errorf("inode %d: size is negative", n)
	}
	copy(in.block[:], raw[40:100])
	if in.flags&extFlagInline != 0 {
		var err error
		if in.inline, err = inlineData(n, raw, in.size); err != nil {
			return nil, err
		}
	}
	sec := int64(int32(binary.LittleEndian.Uint32(raw[16:])))
	var nsec int64
	if e.inodeSize > 128 {
		extra := int64(binary.LittleEndian.Uint16(raw[128:]))
		if extra >= 12 && 128+extra <= e.inodeSize {
			x := binary.LittleEndian.Uint32(raw[136:])
			sec += int64(x&3) << 32 // epoch bits extend the 32-bit seconds past 2038
			nsec = int64(x >> 2)
		}
	}
	in.mtime = time.Unix(sec, min(nsec, 999999999))
	return in, nil
}

func (in *extInode) fileMode() fs.FileMode {
	m := fs.FileMode(in.mode & 0o777)
	if in.mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if in.mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if in.mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	switch in.mode & 0xF000 {
	case 0x4000:
		m |= fs.ModeDir
	case 0xA000:
		m |= fs.ModeSymlink
	case 0x2000:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case 0x6000:
		m |= fs.ModeDevice
	case 0x1000:
		m |= fs.ModeNamedPipe
	case 0xC000:
		m |= fs.ModeSocket
	case 0x8000:
	default:
		m |= fs.ModeIrregular
	}
	return m
}

// entry describes inode in under name.
func (e *extFS) entry(name string, in *extInode) (Entry, error) {
	en := Entry{Name: name, Mode: in.fileMode(), Size: in.size, ModTime: in.mtime, Inode: uint64(in.num), Nlink: uint32(in.nlink)}
	switch {
	case en.Mode.IsDir():
		en.Size = 0
	case en.Mode&fs.ModeSymlink != 0:
		t, err := e.readlink(in)
		if err != nil {
			return en, err
		}
		en.Target = t
	}
	return en, nil
}

func (e *extFS) readlink(in *extInode) (string, error) {
	if in.size > extMaxSymlinkBytes {
		return "", fmt.Errorf("symlink inode %d: target of %d bytes", in.num, in.size)
	}
	if in.size < 60 && in.flags&(extFlagExtents|extFlagInline) == 0 {
		return string(in.block[:in.size]), nil // a fast symlink: the target is in i_block
	}
	b := make([]byte, in.size)
	if _, err := (&extFile{e: e, in: in}).ReadAt(b, 0); err != nil && err != io.EOF {
		return "", fmt.Errorf("symlink inode %d: %w", in.num, err)
	}
	return string(b), nil
}

// The inodeTree methods (inode_tree.go) that give ext its path lookup, Lstat and ReadDir.
func (e *extFS) inodeOf(n uint64) (*extInode, error) {
	if n > 1<<32-1 {
		return nil, fmt.Errorf("inode %d out of range", n)
	}
	return e.inode(uint32(n))
}
func (e *extFS) rootNum() uint64         { return extRootInode }
func (e *extFS) isDir(in *extInode) bool { return in.mode&0xF000 == 0x4000 }
func (e *extFS) folderCache() *dirCache  { return &e.dirs }
func (e *extFS) entries(dir *extInode, fn func(string, uint64) bool) error {
	return e.eachEntry(dir, func(n string, ino uint32) bool { return fn(n, uint64(ino)) })
}

func (e *extFS) lookup(name string) (*extInode, error) { return lookupPath[*extInode](e, name) }
func (e *extFS) Lstat(name string) (Entry, error)      { return lstatPath[*extInode](e, name) }
func (e *extFS) ReadDir(name string) ([]Entry, error)  { return readDirPath[*extInode](e, name) }

func (e *extFS) Open(name string) (File, error) {
	in, err := e.lookup(name)
	if err != nil {
		return nil, err
	}
	if in.mode&0xF000 != 0x8000 {
		return nil, fmt.Errorf("%s: %w", name, ErrNotRegular)
	}
	return &extFile{e: e, in: in}, nil
}

// eachEntry calls fn for every live entry of directory dir ("." and ".." left out) until fn
// returns false.
func (e *extFS) eachEntry(dir *extInode, fn func(name string, ino uint32) bool) error {
	if dir.inline != nil {
		return eachInlineEntry(dir, fn)
	}
	if dir.size > extMaxDirBytes || dir.size > e.size {
		return fmt.Errorf("directory inode %d claims %d bytes", dir.num, dir.size)
	}
	f := &extFile{e: e, in: dir}
	blk := make([]byte, e.bs)
	for off := int64(0); off < dir.size; off += e.bs {
		// The kernel refuses a directory with a hole too; here it also keeps a damaged size
		// from turning into a long scan of nothing.
		if phys, err := f.physical(off / e.bs); err != nil || phys == 0 {
			return fmt.Errorf("directory inode %d: block %d is a hole or unreadable (%v)", dir.num, off/e.bs, err)
		}
		n, err := f.ReadAt(blk, off)
		if err != nil && err != io.EOF {
			return err
		}
		if more, err := eachDirent(dir.num, blk[:n], off, fn); err != nil || !more {
			return err
		}
	}
	return nil
}
