package metacache

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"lukechampine.com/blake3"

	"github.com/snapferry/snapferry/images/store"
)

// MaxRange is the largest pack range kept. An incremental file backup reads the parent
// snapshot's directory trees one blob at a time, a request each on s3:// (a thousand for a
// thousand unchanged folders, where restic's cache of tree packs needed fourteen); tree blobs and
// pack headers are small, file contents mostly come in chunks of 256 KiB and more or in batched
// reads of many blobs, so they pass by.
const MaxRange = 128 << 10

// loadRange serves a small range of a pack from the cache. Packs are immutable, so a range read
// once is the same forever; the copy carries the BLAKE3 hash of its bytes, checked on every read
// (a damaged copy is fetched again), since a range cannot be checked against the pack's name.
func (b *Backend) loadRange(ctx context.Context, h store.Handle, offset, length int64) (io.ReadCloser, error) {
	path := filepath.Join(b.dir, string(store.KindData), h.Name[:2], fmt.Sprintf("%s.%d.%d", h.Name, offset, length))
	if raw, err := os.ReadFile(path); err == nil && len(raw) >= 32 {
		sum := blake3.Sum256(raw[32:])
		if bytes.Equal(sum[:], raw[:32]) {
			return io.NopCloser(bytes.NewReader(raw[32:])), nil
		}
		_ = os.Remove(path)
	}
	data, err := b.loadBytes(ctx, h, offset, length)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) == length {
		sum := blake3.Sum256(data)
		b.keepAt(path, append(sum[:], data...))
	}
	return io.NopCloser(bytes.NewReader(data)), nil
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
