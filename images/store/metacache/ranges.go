package metacache

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"lukechampine.com/blake3"

	"github.com/snapferry/snapferry/images/store"
)

// MaxRange is the largest pack range kept. An incremental file backup reads the parent
// snapshot's directory trees one blob at a time, a request each on s3:// (a thousand for a
// thousand unchanged folders, where restic's cache of tree packs needed fourteen); tree blobs and
// pack headers are small, file contents mostly come in chunks of 256 KiB and more or in batched
// reads of many blobs, so they pass by.
const MaxRange = 128 << 10

// DefaultRangeBytes bounds the bytes of pack ranges kept (New): the trees of /usr/share
// (45 000 files) take 3.4 MB, so this holds those of a few million files. Past it the ranges
// used least recently are dropped.
const DefaultRangeBytes = 128 << 20

// rangePath is where the copy of bytes [offset, offset+length) of pack h is kept.
func (b *Backend) rangePath(h store.Handle, offset, length int64) string {
	return filepath.Join(b.dir, string(store.KindData), h.Name[:2], fmt.Sprintf("%s.%d.%d", h.Name, offset, length))
}

// cachedRange reports whether ranges like this one are kept.
func cachedRange(h store.Handle, length int64) bool {
	return h.Kind == store.KindData && length > 0 && length <= MaxRange && store.Validate(h) == nil
}

// loadRange serves a small range of a pack from the cache. Packs are immutable, so a range read
// once is the same forever; the copy carries the BLAKE3 hash of its bytes, checked on every read
// (a damaged copy is fetched again), since a range cannot be checked against the pack's name.
func (b *Backend) loadRange(ctx context.Context, h store.Handle, offset, length int64) (io.ReadCloser, error) {
	path := b.rangePath(h, offset, length)
	if raw, err := os.ReadFile(path); err == nil && len(raw) >= 32 {
		sum := blake3.Sum256(raw[32:])
		if bytes.Equal(sum[:], raw[:32]) {
			// A use makes the copy young: the bound drops the ranges used least recently.
			now := time.Now()
			_ = os.Chtimes(path, now, now)
			return io.NopCloser(bytes.NewReader(raw[32:])), nil
		}
		_ = os.Remove(path)
	}
	data, err := b.loadBytes(ctx, h, offset, length)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) == length {
		b.keepRangeAt(path, data)
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// KeepRange keeps the bytes src holds as those at offset of pack h (store.RangeCache): the
// repository offers the tree blobs of each pack it stores, so the next backup finds its
// parent's trees here. Ranges larger than MaxRange are declined unread.
func (b *Backend) KeepRange(h store.Handle, offset int64, src *io.SectionReader) {
	if !cachedRange(h, src.Size()) {
		return
	}
	data := make([]byte, src.Size())
	if _, err := src.ReadAt(data, 0); err != nil {
		return
	}
	b.keepRangeAt(b.rangePath(h, offset, src.Size()), data)
}

// HasRange reports whether a copy of the range is kept (store.RangeCache). The copy is checked
// when loaded; a damaged one is fetched then.
func (b *Backend) HasRange(h store.Handle, offset, length int64) bool {
	if !cachedRange(h, length) {
		return false
	}
	_, err := os.Stat(b.rangePath(h, offset, length))
	return err == nil
}

// RangeLimit is MaxRange (store.RangeCache).
func (b *Backend) RangeLimit() int64 { return MaxRange }

// keepRangeAt writes a range's copy, prefixed by the BLAKE3 hash of data, and counts it
// against the bound.
func (b *Backend) keepRangeAt(path string, data []byte) {
	sum := blake3.Sum256(data)
	if b.keepAt(path, append(sum[:], data...)) {
		b.ranges.add(b.dir, int64(len(data))+32)
	}
}

// rangeBudget keeps the range copies under a byte limit. It counts the bytes this process
// added since the last walk; when the count may pass the limit, a walk of the folder measures
// what is there (other processes share it) and drops the least recently used copies down to
// three quarters of the limit, so walks stay rare.
type rangeBudget struct {
	limit int64
	mu    sync.Mutex
	known bool  // total was measured by a walk
	total int64 // bytes in the folder at the last walk, plus what was added since
}

func (r *rangeBudget) add(dir string, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total += n
	if !r.known || r.total > r.limit {
		r.total = trimRanges(filepath.Join(dir, string(store.KindData)), r.limit)
		r.known = true
	}
}

// trimRanges measures the range copies below dir and, when they exceed limit, removes the ones
// used least recently until they fill three quarters of it. It returns the bytes left.
func trimRanges(dir string, limit int64) int64 {
	type copyFile struct {
		path string
		size int64
		used time.Time
	}
	var files []copyFile
	var total int64
	shards, _ := os.ReadDir(dir)
	for _, sh := range shards {
		entries, _ := os.ReadDir(filepath.Join(dir, sh.Name()))
		for _, e := range entries {
			fi, err := e.Info()
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			files = append(files, copyFile{path: filepath.Join(dir, sh.Name(), e.Name()), size: fi.Size(), used: fi.ModTime()})
			total += fi.Size()
		}
	}
	if total <= limit {
		return total
	}
	slices.SortFunc(files, func(a, b copyFile) int { return a.used.Compare(b.used) })
	for _, f := range files {
		if total <= limit/4*3 {
			break
		}
		if os.Remove(f.path) == nil {
			total -= f.size
		}
	}
	return total
}

// listData lists the packs; after a complete listing, cached ranges of packs no longer there
// (pruned) are removed.
func (b *Backend) listData(ctx context.Context, fn func(store.FileInfo) error) error {
	listed := map[string]bool{}
	err := b.Backend.List(ctx, store.KindData, func(fi store.FileInfo) error {
		listed[fi.Name] = true
		return fn(fi)
	})
	if err != nil {
		return err
	}
	shards, _ := os.ReadDir(filepath.Join(b.dir, string(store.KindData)))
	for _, sh := range shards {
		dir := filepath.Join(b.dir, string(store.KindData), sh.Name())
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			name, _, _ := strings.Cut(e.Name(), ".")
			if !listed[name] {
				_ = os.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
	return nil
}
