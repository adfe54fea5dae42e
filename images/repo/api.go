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
