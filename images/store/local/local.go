package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/writeback"
)

// tempPrefix marks files that are being written; List skips them (store.TempPrefix).
const tempPrefix = store.TempPrefix

// Backend stores repository files below Root. It keeps no state besides the path (and scratch
// buffers), so it is safe for concurrent use by goroutines and by other processes or hosts.
type Backend struct {
	root string
	// bufs holds Save's copy buffers: 256 KiB writes instead of io.Copy's 32 KiB cut the
	// syscalls for a 32 MiB pack from 1024 to 128.
	bufs sync.Pool
	// writeOut queues the write-out of a streamed file's dirty pages (writeback.SyncWrite; tests
	// count the calls).
	writeOut func(fd int) error
}

var (
	_ store.Backend       = (*Backend)(nil)
	_ store.SpaceReporter = (*Backend)(nil)
	_ store.TempCleaner   = (*Backend)(nil)
)

// New returns a backend for the folder root. The folder need not exist yet (Create makes it).
func New(root string) *Backend {
	b := &Backend{root: filepath.Clean(root), writeOut: writeback.SyncWrite}
	b.bufs.New = func() any { buf := make([]byte, 256<<10); return &buf }
	return b
}

// Location is the root folder.
func (b *Backend) Location() string { return b.root }

// Path returns the file name of a handle in the shared folder layout (store.RelPath).
func (b *Backend) Path(h store.Handle) string {
	return filepath.Join(b.root, filepath.FromSlash(store.RelPath(h)))
}

func (b *Backend) dir(h store.Handle) string {
	return filepath.Join(b.root, filepath.FromSlash(store.RelDir(h)))
}

func validate(h store.Handle) error { return store.Validate(h) }

// Create makes the root and the folders of every kind. It accepts only a missing or empty folder
// (store.Found): an existing repository is never initialised twice, and nobody's files get a
// repository written among them.
func (b *Backend) Create(ctx context.Context) error {
	var found store.Found
	err := filepath.WalkDir(b.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == b.root {
				return filepath.SkipAll
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(b.root, p)
		if !found.Add(filepath.ToSlash(rel)) {
			return filepath.SkipAll
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("look into %s: %w", b.root, mapErr(err))
	}
	if err := found.Refusal(b.root); err != nil {
		return err
	}
	for _, k := range store.Kinds {
		if k == store.KindConfig {
			continue
		}
		if err := os.MkdirAll(filepath.Join(b.root, string(k)), 0o700); err != nil {
			return fmt.Errorf("create repository folder %s: %w", k, mapErr(err))
		}
	}
	return syncDir(b.root)
}

// Save writes the file atomically and never overwrites (see the package doc): a pending file
// in the file's own folder, filled from rd and committed as h.
func (b *Backend) Save(ctx context.Context, h store.Handle, rd io.Reader) error {
	if err := validate(h); err != nil {
		return fmt.Errorf("save %s in %s: %w", h, b.root, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("save %s: %w", h, err)
	}
	final := b.Path(h)
	if _, err := os.Lstat(final); err == nil {
		return fmt.Errorf("save %s in %s: %w", h, b.root, store.ErrExist)
	}
	p, err := b.newPending(h.Kind, filepath.Dir(final))
	if err != nil {
		return fmt.Errorf("save %s: %w", h, err)
	}
	bufp := b.bufs.Get().(*[]byte)
	_, err = io.CopyBuffer(writerOnly{p.f}, ctxReader{ctx, rd}, *bufp) // writerOnly: else ReadFrom ignores buf
	b.bufs.Put(bufp)
	if err != nil {
		err = fmt.Errorf("save %s: write %s: %w", h, p.f.Name(), mapErr(err))
		p.Abort()
		return err
	}
	return p.Commit(ctx, h)
}

// publish gives the finished temp file its final name without ever replacing an existing file.
// link(2) fails with EEXIST atomically; file systems without hard links (some NAS and FAT mounts)
// fall back to check-then-rename, which is only racy between two writers of the same content.
func publish(tmp, final string) error {
	err := os.Link(tmp, final)
	switch {
	case err == nil:
		return os.Remove(tmp)
	case errors.Is(err, fs.ErrExist):
		_ = os.Remove(tmp)
		return store.ErrExist
	}
	if _, statErr := os.Lstat(final); statErr == nil {
		_ = os.Remove(tmp)
		return store.ErrExist
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, mapErr(err))
	}
	return nil
}

// Load opens the file at offset; length <= 0 reads to the end.
func (b *Backend) Load(ctx context.Context, h store.Handle, offset, length int64) (io.ReadCloser, error) {
	if err := store.CheckLoad(ctx, h, offset); err != nil {
		return nil, err
	}
	f, err := os.Open(b.Path(h))
	if err != nil {
		return nil, fmt.Errorf("load %s from %s: %w", h, b.root, mapErr(err))
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("load %s: seek to %d: %w", h, offset, err)
		}
	}
	if length <= 0 {
		return f, nil
	}
	return limitedFile{io.LimitReader(f, length), f}, nil
}

type limitedFile struct {
	io.Reader
	io.Closer
}

// FileRange tells which bytes of which open file a reader from Load would read: the file, its
// current offset and how many bytes from there (up to the end of the file when the load asked
// for all). A server hands them to the kernel instead of reading them (wire.Stream.SendFile).
// ok is false for a reader that is not a file of this package.
func FileRange(rc io.Reader) (f *os.File, off, n int64, ok bool) {
	limit := int64(-1)
	switch r := rc.(type) {
	case *os.File:
		f = r
	case limitedFile:
		lr, isLimited := r.Reader.(*io.LimitedReader)
		file, isFile := r.Closer.(*os.File)
		if !isLimited || !isFile {
			return nil, 0, 0, false
		}
		f, limit = file, lr.N
	default:
		return nil, 0, 0, false
	}
	off, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, 0, 0, false
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, 0, false
	}
	n = max(fi.Size()-off, 0)
	if limit >= 0 {
		n = min(n, limit)
	}
	return f, off, n, true
}

// Stat reports the file's size and modification time.
func (b *Backend) Stat(ctx context.Context, h store.Handle) (store.FileInfo, error) {
	if err := validate(h); err != nil {
		return store.FileInfo{}, fmt.Errorf("stat %s: %w", h, err)
	}
	fi, err := os.Stat(b.Path(h))
	if err != nil {
		return store.FileInfo{}, fmt.Errorf("stat %s in %s: %w", h, b.root, mapErr(err))
	}
	return store.FileInfo{Name: h.Name, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// List calls fn for every finished file of kind k. A missing kind folder lists nothing.
func (b *Backend) List(ctx context.Context, k store.Kind, fn func(store.FileInfo) error) error {
	return store.ListFolders(ctx, b, k, fn)
}

// ReadDir lists a folder below the root (store.FolderReader); entries removed while listing are
// left out.
func (b *Backend) ReadDir(ctx context.Context, rel string) ([]fs.FileInfo, error) {
	dir := filepath.Join(b.root, filepath.FromSlash(rel))
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	out := make([]fs.FileInfo, 0, len(entries))
	for _, e := range entries {
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", dir, err)
		}
		out = append(out, fi)
	}
	return out, nil
}

// Remove deletes the file; a missing file is ErrNotExist.
func (b *Backend) Remove(ctx context.Context, h store.Handle) error {
	if err := validate(h); err != nil {
		return fmt.Errorf("remove %s: %w", h, err)
	}
	if err := os.Remove(b.Path(h)); err != nil {
		return fmt.Errorf("remove %s from %s: %w", h, b.root, mapErr(err))
	}
	return nil
}

// CleanTemp finds the temp files of interrupted saves and removes those last written before
// `before` (zero: none, only count), in the folders every folder-layout store writes into.
func (b *Backend) CleanTemp(ctx context.Context, before time.Time) (store.TempReport, error) {
	rep, err := store.CleanTempFolders(ctx, b, before)
	if err != nil {
		return rep, fmt.Errorf("temp files in %s: %w", b.root, err)
	}
	return rep, nil
}

// RemoveRel deletes the file at a slash path below the root (store.TempFolders).
func (b *Backend) RemoveRel(ctx context.Context, rel string) error {
	return os.Remove(filepath.Join(b.root, filepath.FromSlash(rel)))
}

// FreeSpace reports the bytes available to this user on the root's file system.
func (b *Backend) FreeSpace(ctx context.Context) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(b.root, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", b.root, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// Close does nothing: the backend holds no open files between calls.
func (b *Backend) Close() error { return nil }

// mapErr turns ENOSPC and EDQUOT into store.ErrNoSpace, keeping the original in the chain.
func mapErr(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", store.ErrNoSpace, err)
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open folder %s for fsync: %w", dir, err)
	}
	defer d.Close()
	// Some file systems (and NFS servers) refuse fsync on folders; the rename is then as durable
	// as that file system makes it, which is all we can get.
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return fmt.Errorf("fsync folder %s: %w", dir, mapErr(err))
	}
	return nil
}

// ctxReader stops a copy when the context ends, so a cancelled upload does not run to the end.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// writerOnly hides *os.File's ReadFrom, which would copy through its own 32 KiB buffer.
type writerOnly struct{ io.Writer }
