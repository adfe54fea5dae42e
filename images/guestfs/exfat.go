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

// exfatFS reads exFAT. Written here: the one pure-Go reader (dsoprea/go-exfat) has been
// unmaintained since 2019. exFAT is a boot sector, a 32-bit FAT and directory entry sets (a file
// entry, a stream extension with the first cluster and size, and name entries of 15 UTF-16
// characters); a file may be one contiguous run ("no FAT chain") or follow the FAT.
type exfatFS struct {
	r        io.ReaderAt
	clusSize int64
	fatOff   int64
	heapOff  int64
	clusters uint32
	root     uint32
}

func openExFAT(r io.ReaderAt, size int64) (FS, error) {
	bs := make([]byte, 512)
	if _, err := r.ReadAt(bs, 0); err != nil {
		return nil, fmt.Errorf("read boot sector: %w", err)
	}
	if string(bs[3:11]) != "EXFAT   " {
		return nil, errors.New("no exFAT boot sector")
	}
	bpsShift, spcShift := uint(bs[108]), uint(bs[109])
	if bpsShift < 9 || bpsShift > 12 || bpsShift+spcShift > 25 {
		return nil, fmt.Errorf("sector shift %d and cluster shift %d are invalid", bpsShift, spcShift)
	}
	sec := int64(1) << bpsShift
	x := &exfatFS{r: r, clusSize: sec << spcShift,
		fatOff:   int64(binary.LittleEndian.Uint32(bs[80:])) * sec,
		heapOff:  int64(binary.LittleEndian.Uint32(bs[88:])) * sec,
		clusters: binary.LittleEndian.Uint32(bs[92:]),
		root:     binary.LittleEndian.Uint32(bs[96:])}
	if x.fatOff <= 0 || x.heapOff <= x.fatOff || x.heapOff >= size || !x.valid(x.root) {
		return nil, errors.New("boot sector geometry does not fit the volume")
	}
	if max := (size - x.heapOff) / x.clusSize; int64(x.clusters) > max {
		x.clusters = uint32(max) // a heap that claims more than the volume holds: trust the volume
	}
	return x, nil
}

func (x *exfatFS) Type() string { return "exfat" }

func (x *exfatFS) valid(c uint32) bool { return c >= 2 && uint64(c) < uint64(x.clusters)+2 }

// exfatData is a file's or folder's clusters: contiguous from first, or a FAT chain.
type exfatData struct {
	x          *exfatFS
	first      uint32
	size       int64 // bytes that hold data (the valid data length)
	length     int64 // bytes allocated; past size reads as zeros
	contiguous bool
	curIdx     int64
	curClus    uint32
}

func (d *exfatData) Size() int64  { return d.length }
func (d *exfatData) Close() error { return nil }

func (d *exfatData) cluster(idx int64) (uint32, error) {
	if d.contiguous {
		c := uint64(d.first) + uint64(idx)
		if !d.x.valid(d.first) || c >= uint64(d.x.clusters)+2 {
			return 0, fmt.Errorf("cluster run from %d past the heap", d.first)
		}
		return uint32(c), nil
	}
	if d.curClus == 0 || idx < d.curIdx {
		if !d.x.valid(d.first) {
			return 0, fmt.Errorf("first cluster %#x is out of range", d.first)
		}
		d.curIdx, d.curClus = 0, d.first
	}
	var b [4]byte
	for d.curIdx < idx {
		if _, err := d.x.r.ReadAt(b[:], d.x.fatOff+4*int64(d.curClus)); err != nil {
			return 0, err
		}
		n := binary.LittleEndian.Uint32(b[:])
		if !d.x.valid(n) {
			return 0, fmt.Errorf("cluster chain ends (%#x) after %d clusters, the size needs more", n, d.curIdx+1)
		}
		d.curIdx++
		d.curClus = n
	}
	return d.curClus, nil
}

func (d *exfatData) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for len(p) > 0 {
		if off >= d.length {
			return n, io.EOF
		}
		in := off % d.x.clusSize
		k := min(int64(len(p)), d.x.clusSize-in, d.length-off)
		if off >= d.size {
			k = min(int64(len(p)), d.length-off)
			clear(p[:k])
		} else {
			k = min(k, d.size-off)
			c, err := d.cluster(off / d.x.clusSize)
			if err != nil {
				return n, err
			}
			if _, err := d.x.r.ReadAt(p[:k], d.x.heapOff+int64(c-2)*d.x.clusSize+in); err != nil {
				return n, err
			}
		}
		n += int(k)
		p, off = p[k:], off+k
	}
	return n, nil
}

// exfatNode is one entry set, or the root.
type exfatNode struct {
	name  string
	dir   bool
	ro    bool
	mtime time.Time
	data  exfatData
}

func (x *exfatFS) rootNode() (*exfatNode, error) {
	// The root's size is not stored: count its chain, bounded by the cluster count.
	n := int64(1)
	d := &exfatData{x: x, first: x.root, size: 1 << 62, length: 1 << 62}
	var b [4]byte
	for c := x.root; ; n++ {
		if _, err := x.r.ReadAt(b[:], x.fatOff+4*int64(c)); err != nil {
			return nil, err
		}
		c = binary.LittleEndian.Uint32(b[:])
		if !x.valid(c) {
			break
		}
		if n > int64(x.clusters) || n*x.clusSize > extMaxDirBytes {
			return nil, errors.New("root folder's cluster chain loops")
		}
	}
	d.size, d.length = n*x.clusSize, n*x.clusSize
	return &exfatNode{name: ".", dir: true, data: *d}, nil
}

func (x *exfatFS) list(dir *exfatNode) ([]*exfatNode, error) {
	if dir.data.length > extMaxDirBytes {
		return nil, fmt.Errorf("folder %q claims %d bytes", dir.name, dir.data.length)
	}
	d := dir.data
	var out []*exfatNode
	ent := make([]byte, 32)
	var cur *exfatNode
	var name []uint16
	secondary, nameLen := 0, 0
	for off := int64(0); off+32 <= d.length; off += 32 {
		if _, err := d.ReadAt(ent, off); err != nil && err != io.EOF {
			return nil, fmt.Errorf("folder %q: %w", dir.name, err)
		}
		typ := ent[0]
		if typ == 0 {
			break // end of the folder
		}
		switch {
		case typ == 0x85:
			attr := binary.LittleEndian.Uint16(ent[4:])
			cur = &exfatNode{dir: attr&0x10 != 0, ro: attr&0x01 != 0,
				mtime: exfatTime(binary.LittleEndian.Uint32(ent[12:]), ent[21], ent[23])}
			secondary, name, nameLen = int(ent[1]), name[:0], 0
		case cur != nil && typ == 0xC0:
			cur.data = exfatData{x: x, first: binary.LittleEndian.Uint32(ent[20:]),
				size: int64(binary.LittleEndian.Uint64(ent[8:])), length: int64(binary.LittleEndian.Uint64(ent[24:])),
				contiguous: ent[1]&0x02 != 0}
			nameLen = int(ent[3])
			secondary--
		case cur != nil && typ == 0xC1:
			for i := 0; i < 15 && len(name) < nameLen; i++ {
				name = append(name, binary.LittleEndian.Uint16(ent[2+2*i:]))
			}
			secondary--
		case typ >= 0x80 && cur != nil && typ&0x40 != 0: // another secondary entry (vendor): skip
			secondary--
		default:
			cur = nil // a deleted entry or a primary entry of another kind (bitmap, up-case, label)
			continue
		}
		if cur != nil && secondary == 0 {
			if nameLen > 0 && len(name) == nameLen {
				cur.name = strings.ToValidUTF8(string(utf16.Decode(name)), "?")
				if cur.data.size < 0 || cur.data.length < 0 || cur.data.size > cur.data.length {
					cur.data.size = max(min(cur.data.size, cur.data.length), 0)
					cur.data.length = max(cur.data.length, 0)
				}
				out = append(out, cur)
			}
			cur = nil
		}
	}
	return out, nil
}

// exfatTime decodes a DOS-style timestamp with exFAT's 10 ms increment and UTC offset.
func exfatTime(ts uint32, ms10, utcOff byte) time.Time {
	if ts == 0 {
		return time.Time{}
	}
	sec := int(ts&31)*2 + int(ms10)/100
	t := time.Date(1980+int(ts>>25), time.Month(ts>>21&15), int(ts>>16&31), int(ts>>11&31), int(ts>>5&63), sec,
		int(ms10)%100*10_000_000, time.UTC)
	if utcOff&0x80 != 0 { // the offset is valid: the time was written in a zone 15-minute steps from UTC
		off := int(int8(utcOff<<1)>>1) * 15
		t = t.Add(-time.Duration(off) * time.Minute)
	}
	return t
}

func (n *exfatNode) nodeName() string { return n.name }
func (n *exfatNode) isDir() bool      { return n.dir }

func (n *exfatNode) entry() Entry {
	e := Entry{Name: n.name, Size: n.data.length, ModTime: n.mtime, Mode: 0o644}
	if n.ro {
		e.Mode = 0o444
	}
	if n.dir {
		e.Mode, e.Size = fs.ModeDir|0o755, 0
	}
	return e
}

// lookup walks name from the root; exFAT names match without regard to case.
func (x *exfatFS) lookup(name string) (*exfatNode, error) {
	n, err := x.rootNode()
	if err != nil {
		return n, err
	}
	return lookupFold(n, name, x.list)
}

func (x *exfatFS) Lstat(name string) (Entry, error) { return lstatFold(name, x.lookup) }

func (x *exfatFS) ReadDir(name string) ([]Entry, error) { return readDirFold(name, x.lookup, x.list) }

func (x *exfatFS) Open(name string) (File, error) {
	return openFold(name, x.lookup, func(n *exfatNode) File {
		d := n.data
		return &d
	})
}
