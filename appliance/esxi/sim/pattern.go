package sim

import (
	"encoding/binary"
	"strconv"
)

// Pattern fills buf with the bytes a guest write with this seed puts at disk offset off. The bytes
// depend on the absolute offset, so any sub-range can be recomputed by tests from the journal.
func Pattern(seed uint64, off int64, buf []byte) {
	var word [8]byte
	for i := 0; i < len(buf); {
		pos := off + int64(i)
		w := uint64(pos) / 8
		binary.LittleEndian.PutUint64(word[:], splitmix64(seed^(w*0x9E3779B97F4A7C15)))
		k := copy(buf[i:], word[pos%8:])
		i += k
	}
}

func splitmix64(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}

// DiskContent is a disk of size bytes as its creation extents made it: what tests compare a
// copy with, after replaying the journal's guest writes on it (ReplayWrite).
func DiskContent(size int64, ext []Extent) []byte {
	content := make([]byte, size)
	for _, x := range ext {
		Pattern(x.Seed, x.Offset, content[x.Offset:x.Offset+x.Length])
	}
	return content
}

// WritesTo reports whether ev is a guest write to disk device of VM vmid.
func (ev Event) WritesTo(vmid, device string) bool {
	return ev.Op == "write" && ev.Fields["vm"] == vmid && ev.Fields["disk"] == device
}

// ReplayWrite puts the bytes guest write ev wrote into content, the whole disk's content.
func ReplayWrite(content []byte, ev Event) {
	off, _ := strconv.ParseInt(ev.Fields["off"], 10, 64)
	n, _ := strconv.ParseInt(ev.Fields["len"], 10, 64)
	seed, _ := strconv.ParseUint(ev.Fields["seed"], 10, 64)
	Pattern(seed, off, content[off:off+n])
}
