package guestfs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"slices"
)

// xfsFile reads an inode's data through its extent list.
type xfsFile struct {
	x    *xfsFS
	in   *xfsInode
	exts []xfsExtent // sorted by file offset
}

func (x *xfsFS) openData(in *xfsInode) (*xfsFile, error) {
	exts, err := x.extents(in)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(exts, func(a, b xfsExtent) int {
		switch {
		case a.off < b.off:
			return -1
		case a.off > b.off:
			return 1
		}
		return 0
	})
	return &xfsFile{x: x, in: in, exts: exts}, nil
}

func (f *xfsFile) Size() int64  { return f.in.size }
func (f *xfsFile) Close() error { return nil }

// phys maps file block lblk to a byte offset on the volume; -1 is a hole or unwritten. It also
// returns how many blocks from lblk on map contiguously (or stay a hole).
func (f *xfsFile) phys(lblk uint64) (int64, uint64, error) {
	i, _ := slices.BinarySearchFunc(f.exts, lblk, func(e xfsExtent, b uint64) int {
		switch {
		case e.off+e.n <= b:
			return -1
		case e.off > b:
			return 1
		}
		return 0
	})
	if i >= len(f.exts) || f.exts[i].off > lblk {
		run := uint64(1 << 20)
		if i < len(f.exts) {
			run = f.exts[i].off - lblk
		}
		return -1, run, nil
	}
	e := f.exts[i]
	if e.unwritten {
		return -1, e.off + e.n - lblk, nil
	}
	off, err := f.x.fsblockToByte(e.start + (lblk - e.off))
	if err != nil {
		return 0, 0, err
	}
	return off, 1, nil
}

func (f *xfsFile) ReadAt(p []byte, off int64) (int, error) {
	return f.readAt(p, off, f.in.size)
}

func (f *xfsFile) readAt(p []byte, off, size int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset")
	}
	n := 0
	bs := f.x.bs
	for len(p) > 0 {
		if off >= size {
			return n, io.EOF
		}
		lblk := uint64(off / bs)
		in := off % bs
		k := min(int64(len(p)), bs-in, size-off)
		ph, _, err := f.phys(lblk)
		if err != nil {
			return n, fmt.Errorf("inode %d block %d: %w", f.in.num, lblk, err)
		}
		if ph < 0 {
			clear(p[:k])
		} else if _, err := f.x.r.ReadAt(p[:k], ph+in); err != nil {
			return n, fmt.Errorf("inode %d block %d: %w", f.in.num, lblk, err)
		}
		n += int(k)
		p, off = p[k:], off+k
	}
	return n, nil
}

// xfsDirLeafOffset is where a directory's leaf and free-index blocks start in its file space;
// only the data blocks below it hold entries.
const xfsDirLeafOffset = 1 << 35

// eachEntry calls fn for each entry of directory in ("." and ".." left out) until fn returns
// false.
func (x *xfsFS) eachEntry(in *xfsInode, fn func(name string, ino uint64) bool) error {
	if in.format == 1 {
		return x.shortformEntries(in, fn)
	}
	f, err := x.openData(in)
	if err != nil {
		return err
	}
	blk := make([]byte, x.dirBS)
	per := uint64(x.dirBS / x.bs)
	var lastDirBlock uint64 = 1<<64 - 1
	for _, e := range f.exts {
		for b := e.off - e.off%per; b < e.off+e.n; b += per {
			if b*uint64(x.bs) >= xfsDirLeafOffset {
				return nil
			}
			if b == lastDirBlock {
				continue
			}
			lastDirBlock = b
			if _, err := f.readAt(blk, int64(b)*x.bs, int64(b)*x.bs+x.dirBS); err != nil && err != io.EOF {
				return err
			}
			if !x.dataBlockEntries(in.num, blk, fn) {
				return nil
			}
		}
	}
	return nil
}

// dataBlockEntries parses one directory data block; false means fn asked to stop.
func (x *xfsFS) dataBlockEntries(ino uint64, b []byte, fn func(string, uint64) bool) bool {
	hdr, end := 16, len(b)
	switch string(b[:4]) {
	case "XD2B", "XDB3":
		count := int(binary.BigEndian.Uint32(b[len(b)-8:]))
		end = len(b) - 8 - 8*count
	case "XD2D", "XDD3":
	default:
		return true // a hole or a block this reader does not know: no entries in it
	}
	if b[3] == '3' {
		hdr = 64
	}
	for p := hdr; p+8 <= end && p >= hdr; {
		if binary.BigEndian.Uint16(b[p:]) == 0xFFFF { // unused space: its length follows
			l := int(binary.BigEndian.Uint16(b[p+2:]))
			if l < 8 || l%8 != 0 {
				return true
			}
			p += l
			continue
		}
		if p+9 > end {
			return true
		}
		inum := binary.BigEndian.Uint64(b[p:])
		nl := int(b[p+8])
		l := 8 + 1 + nl + 2
		if x.ftype {
			l++
		}
		l = (l + 7) &^ 7
		if nl == 0 || p+l > end {
			return true
		}
		name := string(b[p+9 : p+9+nl])
		if name != "." && name != ".." && !fn(name, inum) {
			return false
		}
		p += l
	}
	return true
}

// shortformEntries parses a directory kept inside its inode.
func (x *xfsFS) shortformEntries(in *xfsInode, fn func(string, uint64) bool) error {
	f := in.fork
	if len(f) < 6 {
		return fmt.Errorf("inode %d: short directory is damaged", in.num)
	}
	count, i8 := int(f[0]), f[1] != 0
	isz := 4
	if i8 {
		isz, count = 8, int(f[1])
	}
	p := 2 + isz
	for range count {
		if p+3 > len(f) {
			return fmt.Errorf("inode %d: short directory is damaged", in.num)
		}
		nl := int(f[p])
		q := p + 3 + nl
		if x.ftype {
			q++
		}
		if nl == 0 || q+isz > len(f) {
			return fmt.Errorf("inode %d: short directory is damaged", in.num)
		}
		name := string(f[p+3 : p+3+nl])
		var ino uint64
		if i8 {
			ino = binary.BigEndian.Uint64(f[q:])
		} else {
			ino = uint64(binary.BigEndian.Uint32(f[q:]))
		}
		if !fn(name, ino) {
			return nil
		}
		p = q + isz
	}
	return nil
}

func (in *xfsInode) fileMode() fs.FileMode {
	return (&extInode{mode: in.mode}).fileMode() // the same POSIX mode bits as ext
}

func (x *xfsFS) readlink(in *xfsInode) (string, error) {
	if in.size > extMaxSymlinkBytes || in.size < 0 {
		return "", fmt.Errorf("symlink inode %d: target of %d bytes", in.num, in.size)
	}
	if in.format == 1 {
		if in.size > int64(len(in.fork)) {
			return "", fmt.Errorf("symlink inode %d is damaged", in.num)
		}
		return string(in.fork[:in.size]), nil
	}
	f, err := x.openData(in)
	if err != nil {
		return "", err
	}
	hdr := int64(0)
	if x.v5 {
		hdr = 56 // each remote symlink block starts with an "XSLM" header
	}
	var out []byte
	blk := make([]byte, x.bs)
	for off := int64(0); int64(len(out)) < in.size; off += x.bs {
		if off > 8*x.bs {
			return "", fmt.Errorf("symlink inode %d is damaged", in.num)
		}
		if _, err := f.readAt(blk, off, off+x.bs); err != nil && err != io.EOF {
			return "", err
		}
		out = append(out, blk[hdr:min(x.bs, hdr+in.size-int64(len(out)))]...)
	}
	return string(out), nil
}

func (x *xfsFS) entry(name string, in *xfsInode) (Entry, error) {
	e := Entry{Name: name, Mode: in.fileMode(), Size: in.size, ModTime: in.mtime, Inode: in.num, Nlink: in.nlink}
	switch {
	case e.Mode.IsDir():
		e.Size = 0
	case e.Mode&fs.ModeSymlink != 0:
		t, err := x.readlink(in)
		if err != nil {
			return e, err
		}
		e.Target = t
	}
	return e, nil
}

// The inodeTree methods (inode_tree.go) that give XFS its path lookup, Lstat and ReadDir.
func (x *xfsFS) inodeOf(n uint64) (*xfsInode, error) { return x.inode(n) }
func (x *xfsFS) rootNum() uint64                     { return x.rootIno }
func (x *xfsFS) isDir(in *xfsInode) bool             { return in.mode&0xF000 == 0x4000 }
func (x *xfsFS) folderCache() *dirCache              { return &x.dirs }
func (x *xfsFS) entries(dir *xfsInode, fn func(string, uint64) bool) error {
	return x.eachEntry(dir, fn)
}

func (x *xfsFS) lookup(name string) (*xfsInode, error) { return lookupPath[*xfsInode](x, name) }
func (x *xfsFS) Lstat(name string) (Entry, error)      { return lstatPath[*xfsInode](x, name) }
func (x *xfsFS) ReadDir(name string) ([]Entry, error)  { return readDirPath[*xfsInode](x, name) }

func (x *xfsFS) Open(name string) (File, error) {
	in, err := x.lookup(name)
	if err != nil {
		return nil, err
	}
	if in.mode&0xF000 != 0x8000 {
		return nil, fmt.Errorf("%s: %w", name, ErrNotRegular)
	}
	if in.format == 1 { // never written by Linux for files, but cheap to serve
		return &sizedReader{r: bytes.NewReader(in.fork), size: min(in.size, int64(len(in.fork)))}, nil
	}
	return x.openData(in)
}
