package repo

import "context"

// BlobType separates file/disk content from metadata (block maps, trees). Both live in packs;
// the type is recorded in the pack header and the index.
type BlobType uint8

const (
	DataBlob BlobType = 1 // disk blocks and file chunks
	TreeBlob BlobType = 2 // block-map chunks, directory trees
)

func (t BlobType) String() string {
	switch t {
	case DataBlob:
		return "data"
	case TreeBlob:
		return "tree"
	}
	return "unknown"
}

// BlobStore is what sources (images/disk, images/tree) need from a repository. The concrete
// *Repository implements it; sources depend only on this so they can be tested against a fake.
// All methods are safe for concurrent use: sources call SaveBlob from several goroutines so
// hashing and compression use every core.
type BlobStore interface {
	// BlobID computes the id of a plaintext blob (BLAKE3-256, keyed when encrypted).
	BlobID(data []byte) ID

	// SaveBlob stores data under id unless the repository (or this run) has it already.
	// It reports whether the blob was new. data may be reused by the caller after return.
	SaveBlob(ctx context.Context, t BlobType, id ID, data []byte) (added bool, err error)

	// LoadBlob returns the plaintext of a blob, verified against its id, reusing buf if large
	// enough.
	LoadBlob(ctx context.Context, t BlobType, id ID, buf []byte) ([]byte, error)

	// HasBlob reports whether the blob is stored or queued in this run.
	HasBlob(t BlobType, id ID) bool

	// BlockSize is the fixed disk-image block size chosen at init (default 1 MiB).
	BlockSize() int
}

// PatchStore is a BlobStore that can keep a changed disk block as a patch of an earlier block
// (docs/repository-format.md, "Patch blobs"): only the sub-blocks that changed are stored, so
// a guest's scattered small writes cost about what they wrote, in the repository and on the
// wire. *Repository implements it; a source uses it when PatchesEnabled says the repository's
// format allows patches, and falls back to SaveBlob otherwise.
type PatchStore interface {
	BlobStore

	// PatchesEnabled reports whether patches may be written (format version 3 or newer:
	// older builds must never meet one).
	PatchesEnabled() bool

	// IsFullBlob reports whether id is stored, or queued in this run, as a whole blob (not a
	// patch). Only whole blobs may be patch bases, so a block never needs more than one other
	// blob to be rebuilt.
	IsFullBlob(id ID) bool

	// SavePatch stores block, whose id is id, as a patch of the whole blob base: only the
	// sub-blocks listed in changed (indexes of subSize-byte pieces of block, increasing) are
	// kept. Unless the repository has id already (then it reports false, like SaveBlob), and
	// when base is not a whole blob, the block is stored whole instead. The caller vouches
	// that the sub-blocks not listed equal base's; LoadBlob checks the rebuilt block against
	// id, so a wrong claim is caught as corruption, never restored silently.
	SavePatch(ctx context.Context, id, base ID, block []byte, subSize int, changed []int) (added bool, err error)
}
