package metacache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"lukechampine.com/blake3"

	"github.com/snapferry/snapferry/images/store"
)

// cached reports whether files of kind k are kept: immutable, named by their hash, small, and
// read whole by every open of the repository.
func cached(k store.Kind) bool { return k == store.KindIndex || k == store.KindSnapshots }

// Backend is a store with a local cache of its index and snapshot files and of small ranges of
// its packs.
type Backend struct {
	store.Backend
	dir    string
	ranges *rangeBudget
}

var (
	_ store.Backend       = (*Backend)(nil)
	_ store.StreamSaver   = (*Backend)(nil)
	_ store.Cleaner       = (*Backend)(nil)
	_ store.TempCleaner   = (*Backend)(nil)
	_ store.SpaceReporter = (*Backend)(nil)
	_ store.RangeCache    = (*Backend)(nil)
)

// New caches be's index and snapshot files and small ranges of its packs in dir (one folder per
// repository: the caller keys it by the repository's location), the ranges bounded by
// DefaultRangeBytes. The folder is made when first written.
func New(be store.Backend, dir string) *Backend { return NewBounded(be, dir, DefaultRangeBytes) }

// NewBounded is New with the pack ranges kept bounded by rangeBytes.
func NewBounded(be store.Backend, dir string, rangeBytes int64) *Backend {
	return &Backend{Backend: be, dir: dir, ranges: &rangeBudget{limit: rangeBytes}}
}

// Unwrap returns the cached store.
func (b *Backend) Unwrap() store.Backend { return b.Backend }

func (b *Backend) path(h store.Handle) string { return filepath.Join(b.dir, string(h.Kind), h.Name) }

// Load serves index and snapshot files, and small ranges of packs, from the cache, fetching a
// missing or damaged copy first.
func (b *Backend) Load(ctx context.Context, h store.Handle, offset, length int64) (io.ReadCloser, error) {
	if cachedRange(h, length) {
		return b.loadRange(ctx, h, offset, length)
	}
	if !cached(h.Kind) || store.Validate(h) != nil {
		return b.Backend.Load(ctx, h, offset, length)
	}
	data, err := b.read(h)
	if err != nil {
		if data, err = b.fetch(ctx, h); err != nil {
			return nil, err
		}
	}
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	data = data[offset:]
	if length > 0 && length < int64(len(data)) {
		data = data[:length]
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// read returns the cached copy of h if it matches its name.
func (b *Backend) read(h store.Handle) ([]byte, error) {
	data, err := os.ReadFile(b.path(h))
	if err != nil {
		return nil, err
	}
	if !matches(h, data) {
		_ = os.Remove(b.path(h))
		return nil, fmt.Errorf("cached %s does not match its name", h)
	}
	return data, nil
}

func matches(h store.Handle, data []byte) bool {
	sum := blake3.Sum256(data)
	return fmt.Sprintf("%x", sum) == h.Name
}

// fetch loads h whole from the store and keeps a copy when it matches its name (a file that does
// not is returned as it is, for the repository to report, and not cached).
func (b *Backend) fetch(ctx context.Context, h store.Handle) ([]byte, error) {
	data, err := b.loadBytes(ctx, h, 0, 0)
	if err != nil {
		return nil, err
	}
	if matches(h, data) {
		b.keep(h, data)
	}
	return data, nil
}

// loadBytes reads a range of h from the store.
func (b *Backend) loadBytes(ctx context.Context, h store.Handle, offset, length int64) ([]byte, error) {
	rd, err := b.Backend.Load(ctx, h, offset, length)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return io.ReadAll(rd)
}

// keep writes a cached copy of h.
func (b *Backend) keep(h store.Handle, data []byte) { _ = b.keepAt(b.path(h), data) }

// keepAt writes data to path under a temp name and renames it, so a crash leaves no torn copy,
// and reports whether it did. Failing to cache is not an error: the store still has the file.
func (b *Backend) keepAt(path string, data []byte) bool {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false
	}
	f, err := os.CreateTemp(dir, store.TempPrefix+"*")
	if err != nil {
		return false
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err == nil
}

// Save stores the file and keeps a copy of index and snapshot files this host wrote. Those are
// read into memory first (they are small) and handed on as a bytes.Reader, which the store can
// send in place and resend on a retry.
func (b *Backend) Save(ctx context.Context, h store.Handle, rd io.Reader) error {
	if !cached(h.Kind) {
		return b.Backend.Save(ctx, h, rd)
	}
	data, err := io.ReadAll(rd)
	if err != nil {
		return fmt.Errorf("save %s: read source: %w", h, err)
	}
	if err := b.Backend.Save(ctx, h, bytes.NewReader(data)); err != nil {
		return err
	}
	if matches(h, data) {
		b.keep(h, data)
	}
	return nil
}

// Remove removes the file and its cached copy.
func (b *Backend) Remove(ctx context.Context, h store.Handle) error {
	err := b.Backend.Remove(ctx, h)
	if cached(h.Kind) && store.Validate(h) == nil && (err == nil || errors.Is(err, store.ErrNotExist)) {
		_ = os.Remove(b.path(h))
	}
	return err
}

// List lists the store; after a complete listing of a cached kind, copies of files the store no
// longer has (pruned, forgotten) are removed.
func (b *Backend) List(ctx context.Context, k store.Kind, fn func(store.FileInfo) error) error {
	if k == store.KindData {
		return b.listData(ctx, fn)
	}
	if !cached(k) {
		return b.Backend.List(ctx, k, fn)
	}
	listed := map[string]bool{}
	err := b.Backend.List(ctx, k, func(fi store.FileInfo) error {
		listed[fi.Name] = true
		return fn(fi)
	})
	if err != nil {
		return err
	}
	entries, _ := os.ReadDir(filepath.Join(b.dir, string(k)))
	for _, e := range entries {
		if !listed[e.Name()] {
			_ = os.Remove(filepath.Join(b.dir, string(k), e.Name()))
		}
	}
	return nil
}

// SaveStream, Cleanup and FreeSpace pass through to the store when it has them.

func (b *Backend) SaveStream(ctx context.Context, k store.Kind) (store.Pending, error) {
	return store.StartStream(ctx, b.Backend, k)
}

func (b *Backend) Cleanup(ctx context.Context) (int, error) {
	if c, ok := b.Backend.(store.Cleaner); ok {
		return c.Cleanup(ctx)
	}
	return 0, nil
}

func (b *Backend) CleanTemp(ctx context.Context, before time.Time) (store.TempReport, error) {
	if c, ok := b.Backend.(store.TempCleaner); ok {
		return c.CleanTemp(ctx, before)
	}
	return store.TempReport{}, nil
}

func (b *Backend) FreeSpace(ctx context.Context) (int64, error) {
	if sr, ok := b.Backend.(store.SpaceReporter); ok {
		return sr.FreeSpace(ctx)
	}
	return -1, nil
}
