package blobhash

import (
	"encoding/binary"
	"math/bits"

	"lukechampine.com/blake3/guts"
)

// Size is the digest length in bytes.
const Size = 32

// group is how many chunks one SIMD call compresses.
const group = guts.MaxSIMD * guts.ChunkSize

// Hasher is a BLAKE3-256 hash of the bytes written so far. Its zero value is not usable: make
// one with New or NewKeyed. It is not safe for concurrent use.
type Hasher struct {
	key   [8]uint32
	flags uint32
	// stack holds the chaining values of finished subtrees, at most one per height (height h
	// covers 2^h chunks); bit h of chunks says whether stack[h] is in use, as in the library.
	stack  [64][8]uint32
	chunks uint64 // chunks compressed so far
	// buf holds the last chunk, partial or full: it is compressed only once more input shows it
	// is not the root's.
	buf    [guts.ChunkSize]byte
	buflen int
	// group stages fewer than guts.MaxSIMD chunks for one SIMD call when the position is not
	// aligned to a group.
	group [group]byte
}

// New returns an unkeyed hasher.
func New() *Hasher {
	return &Hasher{key: guts.IV}
}

// NewKeyed returns a hasher keyed with key, which must be 32 bytes (BLAKE3's keyed mode).
func NewKeyed(key []byte) *Hasher {
	h := &Hasher{}
	h.setKey(key)
	return h
}

func (h *Hasher) setKey(key []byte) {
	h.flags = guts.FlagKeyedHash
	for i := range h.key {
		h.key[i] = binary.LittleEndian.Uint32(key[i*4:])
	}
}

// Sum256 is the unkeyed BLAKE3-256 of data.
func Sum256(data []byte) [Size]byte {
	var h Hasher
	h.key = guts.IV
	h.Write(data)
	return h.Sum256()
}

// Reset forgets what was written; the key stays.
func (h *Hasher) Reset() {
	h.chunks, h.buflen = 0, 0
}

// Write adds p. It never fails.
func (h *Hasher) Write(p []byte) (int, error) {
	n := len(p)
	// Fill the held chunk first; compress it only if more input follows.
	if h.buflen > 0 {
		c := copy(h.buf[h.buflen:], p)
		h.buflen += c
		p = p[c:]
		if len(p) == 0 {
			return n, nil
		}
		h.push(guts.ChainingValue(guts.CompressChunk(h.buf[:], &h.key, h.chunks, h.flags)), 0)
		h.buflen = 0
	}
	// Whole chunks, keeping the last (full or partial) one back.
	for len(p) > guts.ChunkSize {
		avail := uint64((len(p) - 1) / guts.ChunkSize) // chunks that are surely not the last
		// The largest power-of-two run of chunks that starts here and stays aligned: the
		// tree's subtrees are aligned to their size.
		height := min(bits.TrailingZeros64(h.chunks|1<<63), bits.Len64(avail)-1, 4)
		k := 1 << height
		if k == guts.MaxSIMD {
			h.push(guts.ChainingValue(guts.CompressBuffer((*[group]byte)(p[:group]), group, &h.key, h.chunks, h.flags)), height)
		} else if k > 1 {
			copy(h.group[:], p[:k*guts.ChunkSize])
			h.push(guts.ChainingValue(guts.CompressBuffer(&h.group, k*guts.ChunkSize, &h.key, h.chunks, h.flags)), height)
		} else {
			h.push(guts.ChainingValue(guts.CompressChunk(p[:guts.ChunkSize], &h.key, h.chunks, h.flags)), 0)
		}
		p = p[k*guts.ChunkSize:]
	}
	h.buflen = copy(h.buf[:], p)
	return n, nil
}

// push adds the chaining value of a finished subtree of 2^height chunks, merging it with the
// finished subtrees of equal height before it.
func (h *Hasher) push(cv [8]uint32, height int) {
	i := height
	for h.chunks&(1<<i) != 0 {
		cv = guts.ChainingValue(guts.ParentNode(h.stack[i], cv, &h.key, h.flags))
		i++
	}
	h.stack[i] = cv
	h.chunks += 1 << height
}

// Sum256 returns the digest of what was written; the hasher can go on.
func (h *Hasher) Sum256() [Size]byte {
	n := guts.CompressChunk(h.buf[:h.buflen], &h.key, h.chunks, h.flags)
	for i := bits.TrailingZeros64(h.chunks); i < bits.Len64(h.chunks); i++ {
		if h.chunks&(1<<i) != 0 {
			n = guts.ParentNode(h.stack[i], guts.ChainingValue(n), &h.key, h.flags)
		}
	}
	n.Flags |= guts.FlagRoot
	out := guts.WordsToBytes(guts.CompressNode(n))
	var sum [Size]byte
	copy(sum[:], out[:Size])
	return sum
}

// Sum appends the digest to b (hash.Hash's form).
func (h *Hasher) Sum(b []byte) []byte {
	s := h.Sum256()
	return append(b, s[:]...)
}

// SumKeyed256 is the BLAKE3-256 of data keyed with key (32 bytes).
func SumKeyed256(key, data []byte) [Size]byte {
	var h Hasher
	h.setKey(key)
	h.Write(data)
	return h.Sum256()
}
