package guestfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"
	"unicode/utf16"
)

// fatFS reads FAT12, FAT16 and FAT32 with long names. It is written here because go-diskfs's
// FAT reader (v1.9.4, the one pure-Go candidate) decodes long names as bytes, so a folder named
// "jürgen" comes back as "j\xfcrgen" and cannot be opened; the format is small enough to read
// by hand: a boot sector, one table, and 32-byte directory entries.
type fatFS struct {
	r         io.ReaderAt
	bits      int   // 12, 16, 32
	clusSize  int64 // bytes per cluster
	fatOff    int64
	rootOff   int64 // FAT12/16: the fixed root directory
	rootLen   int64
	rootClus  uint32 // FAT32
	dataOff   int64
	clusters  uint32 // data clusters; valid numbers are 2 .. clusters+1
	fatLength int64
}

func openFAT(r io.ReaderAt, size int64) (FS, error) {
	bs := make([]byte, 512)
	if _, err := r.ReadAt(bs, 0); err != nil {
		return nil, fmt.Errorf("read boot sector: %w", err)
	}
	if !isFAT(bs) {
		return nil, errors.New("no FAT boot sector")
	}
	le16 := func(o int) int64 { return int64(binary.LittleEndian.Uint16(bs[o:])) }
	le32 := func(o int) int64 { return int64(binary.LittleEndian.Uint32(bs[o:])) }
	bps, spc := le16(11), int64(bs[13])
	reserved, nfats, rootEnts := le16(14), int64(bs[16]), le16(17)
	fatSz := le16(22)
	if fatSz == 0 {
		fatSz = le32(36)
	}
	total := le16(19)
	if total == 0 {
		total = le32(32)
	}
	rootSectors := (rootEnts*32 + bps - 1) / bps
	dataSec := reserved + nfats*fatSz + rootSectors
	if fatSz == 0 || total <= dataSec || total*bps > size+bps*spc {
		return nil, fmt.Errorf("boot sector geometry (%d sectors, data from %d) does not fit the volume of %d bytes", total, dataSec, size)
	}
	f := &fatFS{r: r, clusSize: bps * spc, fatOff: reserved * bps, fatLength: fatSz * bps,
		rootOff: (reserved + nfats*fatSz) * bps, rootLen: rootSectors * bps, dataOff: dataSec * bps}
	f.clusters = uint32((total - dataSec) / spc)
	switch {
	case le16(22) == 0:
		f.bits = 32
		f.rootClus = uint32(le32(44))
	case f.clusters < 4085:
		f.bits = 12
	default:
		f.bits = 16
	}
	if max := f.fatLength * 8 / int64(f.bits); int64(f.clusters)+2 > max {
		f.clusters = uint32(max - 2) // a table shorter than the data area: trust the table
	}
	return f, nil
}

func (f *fatFS) Type() string { return "vfat" }

// next returns the cluster after c in its chain; ok is false at the end of the chain.
func (f *fatFS) next(c uint32) (uint32, bool, error) {
	var b [4]byte
	var v uint32
	switch f.bits {
	case 12:
		if _, err := f.r.ReadAt(b[:2], f.fatOff+int64(c)+int64(c/2)); err != nil {
			return 0, false, err
		}
		v = uint32(binary.LittleEndian.Uint16(b[:]))
		if c&1 != 0 {
			v >>= 4
		}
		v &= 0xFFF
		if v >= 0xFF8 {
			return 0, false, nil
		}
	case 16:
		if _, err := f.r.ReadAt(b[:2], f.fatOff+2*int64(c)); err != nil {
			return 0, false, err
		}
		v = uint32(binary.LittleEndian.Uint16(b[:]))
		if v >= 0xFFF8 {
			return 0, false, nil
		}
	default:
		if _, err := f.r.ReadAt(b[:], f.fatOff+4*int64(c)); err != nil {
			return 0, false, err
		}
		v = binary.LittleEndian.Uint32(b[:]) & 0x0FFFFFFF
		if v >= 0x0FFFFFF8 {
			return 0, false, nil
		}
	}
	if !f.valid(v) {
		return 0, false, fmt.Errorf("cluster %d links to cluster %#x, which is free, bad or out of range", c, v)
	}
	return v, true, nil
}

func (f *fatFS) valid(c uint32) bool { return c >= 2 && c < f.clusters+2 }

func (f *fatFS) clusterOff(c uint32) int64 { return f.dataOff + int64(c-2)*f.clusSize }

// fatNode is one directory entry, or the root.
type fatNode struct {
	name  string
	dir   bool
	ro    bool
	first uint32 // first cluster; 0 for an empty file (or the FAT12/16 root)
	size  int64
	mtime time.Time
	root  bool
}

func (n *fatNode) nodeName() string { return n.name }
func (n *fatNode) isDir() bool      { return n.dir }

func (n *fatNode) entry() Entry {
	e := Entry{Name: n.name, Size: n.size, ModTime: n.mtime, Mode: 0o644}
	if n.ro {
		e.Mode = 0o444
	}
	if n.dir {
		e.Mode, e.Size = fs.ModeDir|0o755, 0
	}
	return e
}

// chainFile reads a cluster chain; it remembers its last position so sequential reads do not
// walk the chain from the start each time.
type chainFile struct {
	f       *fatFS
	first   uint32
	size    int64
	curIdx  int64
	curClus uint32
}

func (c *chainFile) Size() int64  { return c.size }
func (c *chainFile) Close() error { return nil }

func (c *chainFile) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for len(p) > 0 {
		if off >= c.size {
			return n, io.EOF
		}
		idx := off / c.f.clusSize
		if c.curClus == 0 || idx < c.curIdx {
			if !c.f.valid(c.first) {
				return n, fmt.Errorf("first cluster %#x is out of range", c.first)
			}
			c.curIdx, c.curClus = 0, c.first
		}
		for c.curIdx < idx {
			nx, ok, err := c.f.next(c.curClus)
			if err != nil {
				return n, err
			}
			if !ok {
				return n, fmt.Errorf("cluster chain ends after %d clusters, the size needs more", c.curIdx+1)
			}
			c.curIdx++
			c.curClus = nx
		}
		in := off % c.f.clusSize
		k := min(int64(len(p)), c.f.clusSize-in, c.size-off)
		if _, err := c.f.r.ReadAt(p[:k], c.f.clusterOff(c.curClus)+in); err != nil {
			return n, err
		}
		n += int(k)
		p, off = p[k:], off+k
	}
	return n, nil
}

// dirBytes returns a reader over a directory's entries and their length. A directory's chain
// length is not stored, so it is bounded by the cluster count (a loop ends there).
func (f *fatFS) dirReader(n *fatNode) (io.ReaderAt, int64, error) {
	if n.root && f.bits != 32 {
		return io.NewSectionReader(f.r, f.rootOff, f.rootLen), f.rootLen, nil
	}
	first := n.first
	if n.root {
		first = f.rootClus
	}
	if !f.valid(first) {
		return nil, 0, fmt.Errorf("directory %q starts at cluster %#x, out of range", n.name, first)
	}
	count := int64(1)
	for c := first; ; count++ {
		nx, ok, err := f.next(c)
		if err != nil {
			return nil, 0, err
		}
		if !ok {
			break
		}
		if count > int64(f.clusters) || count*f.clusSize > extMaxDirBytes {
			return nil, 0, fmt.Errorf("directory %q: cluster chain loops", n.name)
		}
		c = nx
	}
	size := count * f.clusSize
	return &chainFile{f: f, first: first, size: size}, size, nil
}

func (f *fatFS) list(n *fatNode) ([]*fatNode, error) {
	r, size, err := f.dirReader(n)
	if err != nil {
		return nil, err
	}
	var out []*fatNode
	var lfn []uint16
	var lfnSum byte
	lfnNext := -1
	ent := make([]byte, 32)
	for off := int64(0); off < size; off += 32 {
		if _, err := r.ReadAt(ent, off); err != nil && err != io.EOF {
			return nil, err
		}
		if ent[0] == 0 {
			break
		}
		if ent[0] == 0xE5 {
			lfnNext = -1
			continue
		}
		attr := ent[11]
		if attr&0x3F == 0x0F { // a long-name piece; pieces come last first
			ord := int(ent[0] & 0x3F)
			if ent[0]&0x40 != 0 {
				lfn, lfnSum, lfnNext = make([]uint16, 13*ord), ent[13], ord
			}
			if ord == 0 || ord != lfnNext || ent[13] != lfnSum {
				lfnNext = -1
				continue
			}
			base := 13 * (ord - 1)
			for i, o := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
				lfn[base+i] = binary.LittleEndian.Uint16(ent[o:])
			}
			lfnNext--
			continue
		}
		if attr&0x08 != 0 { // the volume label
			lfnNext = -1
			continue
		}
		name := shortName(ent)
		if lfnNext == 0 && lfnSum == shortSum(ent) {
			name = decodeLFN(lfn)
		}
		lfnNext = -1
		if name == "." || name == ".." {
			continue
		}
		out = append(out, &fatNode{
			name:  name,
			dir:   attr&0x10 != 0,
			ro:    attr&0x01 != 0,
			first: uint32(binary.LittleEndian.Uint16(ent[20:]))<<16 | uint32(binary.LittleEndian.Uint16(ent[26:])),
			size:  int64(binary.LittleEndian.Uint32(ent[28:])),
			mtime: fatTime(binary.LittleEndian.Uint16(ent[24:]), binary.LittleEndian.Uint16(ent[22:])),
		})
	}
	return out, nil
}

func shortName(e []byte) string {
	b := make([]byte, 11)
	copy(b, e[:11])
	if b[0] == 0x05 {
		b[0] = 0xE5
	}
	base, ext := strings.TrimRight(decodeOEM(b[:8]), " "), strings.TrimRight(decodeOEM(b[8:11]), " ")
	if e[12]&0x08 != 0 {
		base = strings.ToLower(base)
	}
	if e[12]&0x10 != 0 {
		ext = strings.ToLower(ext)
	}
	if ext != "" {
		base += "." + ext
	}
	return base
}

func shortSum(e []byte) byte {
	var s byte
	for _, c := range e[:11] {
		s = (s>>1 | s<<7) + c
	}
	return s
}

func decodeLFN(u []uint16) string {
	for i, c := range u {
		if c == 0 || c == 0xFFFF {
			u = u[:i]
			break
		}
	}
	return strings.ToValidUTF8(string(utf16.Decode(u)), "?")
}

func fatTime(d, t uint16) time.Time {
	if d == 0 {
		return time.Time{}
	}
	return time.Date(1980+int(d>>9), time.Month(d>>5&15), int(d&31), int(t>>11), int(t>>5&63), int(t&31)*2, 0, time.UTC)
}

// lookup walks name from the root. FAT names match without regard to case, as Windows does.
func (f *fatFS) lookup(name string) (*fatNode, error) {
	return lookupFold(&fatNode{name: ".", dir: true, root: true}, name, f.list)
}

func (f *fatFS) Lstat(name string) (Entry, error) { return lstatFold(name, f.lookup) }

func (f *fatFS) ReadDir(name string) ([]Entry, error) { return readDirFold(name, f.lookup, f.list) }

func (f *fatFS) Open(name string) (File, error) {
	return openFold(name, f.lookup, func(n *fatNode) File { return &chainFile{f: f, first: n.first, size: n.size} })
}
