package replica

import (
	"crypto/rand"
	"encoding/binary"
	"sync"

	"github.com/zeebo/xxh3"

	"github.com/snapferry/snapferry/images/blobhash"
)

// Two hashes describe a block:
//
//   - the strong hash, BLAKE3-256: what a block is. It travels with every sent block (the far
//     side checks what it writes against it) and stays in the sidecar;
//   - the fast hash, XXH3-128 seeded with a random per-sidecar seed: what the two sides compare
//     to find changed blocks. Hashing every block of a disk is the whole cost of a run that
//     changed little, and XXH3 is about ten times cheaper than BLAKE3 (rsync compares with a
//     128-bit XXH3 as well). The seed is secret to the two hosts, so a guest writing its own
//     disk cannot aim for a collision that would keep a changed block off the replica; a random
//     change goes unnoticed with probability 2^-128 per block.
const (
	FastSize   = 16
	StrongSize = 32
)

type fastHash [FastSize]byte

func fastSum(b []byte, seed uint64) fastHash {
	h := xxh3.Hash128Seed(b, seed)
	var out fastHash
	binary.BigEndian.PutUint64(out[:8], h.Hi)
	binary.BigEndian.PutUint64(out[8:], h.Lo)
	return out
}

// strongSum runs on the caller's goroutine (blobhash): the callers are already one per core.
func strongSum(b []byte) [StrongSize]byte { return blobhash.Sum256(b) }

// newSeed draws the fast-hash seed of a new sidecar.
func newSeed() uint64 {
	var b [8]byte
	rand.Read(b[:]) // crypto/rand's Read never fails (since Go 1.24 it crashes the program instead)
	return binary.LittleEndian.Uint64(b[:])
}

// zeroHashes caches the hashes of an all-zero block per length (a file has at most two lengths)
// for one seed.
type zeroHashes struct {
	seed uint64
	mu   sync.Mutex
	m    map[int]zeroEntry
}

type zeroEntry struct {
	fast   fastHash
	strong [StrongSize]byte
}

func newZeroHashes(seed uint64) *zeroHashes { return &zeroHashes{seed: seed} }

func (z *zeroHashes) get(n int) zeroEntry {
	z.mu.Lock()
	defer z.mu.Unlock()
	if e, ok := z.m[n]; ok {
		return e
	}
	if z.m == nil {
		z.m = make(map[int]zeroEntry)
	}
	zeros := make([]byte, n)
	e := zeroEntry{fast: fastSum(zeros, z.seed), strong: strongSum(zeros)}
	z.m[n] = e
	return e
}
