package disk

import (
	"github.com/zeebo/xxh3"
)

// Changed blocks as patches (docs/block-cache.md, "Patches"). A guest's 64 KiB write changes one
// 1 MiB block; with a repo.PatchStore whose PatchesEnabled, such a block is stored as a patch of
// the last whole blob of the same block (its base), keeping only the sub-blocks that differ.
// The fingerprint cache remembers each block's base and the seeded XXH3-64 of each of the base's
// sub-blocks, so a later run finds the changed sub-blocks by hashing the new block's sub-blocks
// alone: the base is never read back.

// maxSubBlocks is the number of sub-blocks of a full block (fewer for blocks under 64 KiB).
const maxSubBlocks = 16

// minSubBlock is the smallest sub-block: below it a patch's bookkeeping outweighs its savings.
const minSubBlock = 4096

// subBlockSize is the sub-block size of a repository block size: blockSize/16, at least 4 KiB
// (64 KiB for the default 1 MiB block). Block sizes are powers of two of at least 4 KiB, so a
// block holds 1 to 16 sub-blocks, and a block of 4 KiB (one sub-block) is never patched.
func subBlockSize(blockSize int) int { return max(blockSize/maxSubBlocks, minSubBlock) }

// subHashes are the hashes of a block's sub-blocks; those past its last sub-block are zero.
type subHashes [maxSubBlocks]uint64

// hashSubBlocks hashes each subSize piece of b (the last one may be short) with XXH3-64 and
// the cache's seed. The seed keeps a guest from aiming at a collision, as for the fast hash.
func hashSubBlocks(b []byte, subSize int, seed uint64) (h subHashes) {
	for i := 0; i*subSize < len(b) && i < maxSubBlocks; i++ {
		h[i] = xxh3.HashSeed(b[i*subSize:min(len(b), (i+1)*subSize)], seed)
	}
	return h
}

// changedSubBlocks lists, in increasing order, the sub-blocks of a block of n bytes whose hashes
// differ between a and b.
func changedSubBlocks(a, b *subHashes, n, subSize int) []int {
	var changed []int
	for i := 0; i*subSize < n && i < maxSubBlocks; i++ {
		if a[i] != b[i] {
			changed = append(changed, i)
		}
	}
	return changed
}

// worthPatching reports whether a block of n bytes with the given changed sub-blocks is stored
// as a patch: at least one and at most half of its sub-blocks changed. Past half, a whole blob
// costs little more and becomes the new base, so patches never grow towards whole blocks.
func worthPatching(changed []int, n, subSize int) bool {
	pieces := (n + subSize - 1) / subSize
	return len(changed) >= 1 && 2*len(changed) <= pieces
}
