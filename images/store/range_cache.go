package store

import "io"

// RangeCache is implemented by stores that keep local copies of small ranges of packs
// (images/store/metacache in front of s3://), so a Load of such a range is served from disk. The
// repository uses it for the tree blobs a backup wrote (write-through: the next incremental
// reads its parent's directory trees without a request each) and to tell which blobs of a batch
// are cached already.
type RangeCache interface {
	// KeepRange offers the bytes at offset of the stored pack h, readable from src (src.Size()
	// of them), for the cache. It is a hint: the cache reads src only if it takes the range (not
	// one too large) and may fail to keep it (a full disk); nothing fails with it.
	KeepRange(h Handle, offset int64, src *io.SectionReader)
	// HasRange reports whether Load(h, offset, length) would be served from the cache.
	HasRange(h Handle, offset, length int64) bool
	// RangeLimit is the longest range the cache keeps: HasRange is false for longer ones
	// whatever was offered.
	RangeLimit() int64
}

// RangeCacheOf finds a RangeCache in be or below its wrappers.
func RangeCacheOf(be Backend) (RangeCache, bool) { return findAbility[RangeCache](be) }

// findAbility finds an optional ability T in be or below its wrappers.
func findAbility[T any](be Backend) (T, bool) {
	for be != nil {
		if r, ok := be.(T); ok {
			return r, true
		}
		u, ok := be.(Unwrapper)
		if !ok {
			break
		}
		be = u.Unwrap()
	}
	var zero T
	return zero, false
}
