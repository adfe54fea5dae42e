package sim

import "encoding/binary"

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
