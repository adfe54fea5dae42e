package guestfs

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	ntfs "www.velocidex.com/golang/go-ntfs/parser"
)

// ntfsFS reads NTFS through Velocidex's go-ntfs, the parser Velociraptor uses on evidence
// images: MFT records with attribute lists, resident and non-resident data, compressed and
// sparse runs, and index (B+ tree) directories. Files are read through its RangeReaderAt, so
// random access costs only the clusters read. Names are listed from each directory's own index
// (not from the MFT record, whose other names are hard links elsewhere); DOS 8.3 aliases and
// alternate data streams are left out; NTFS security descriptors have no POSIX mode, so files
// are 0644 and folders 0755.
type ntfsFS struct {
	ctx *ntfs.NTFSContext
}

func openNTFS(r io.ReaderAt, size int64) (FS, error) {
	ctx, err := ntfs.GetNTFSContext(r, 0)
	if err != nil {
		return nil, err
	}
	if _, err := ctx.GetMFT(5); err != nil {
		return nil, fmt.Errorf("root directory: %w", err)
	}
	return &ntfsFS{ctx: ctx}, nil
}

func (n *ntfsFS) Type() string { return "ntfs" }

func (n *ntfsFS) lookup(name string) (*ntfs.MFT_ENTRY, error) {
	root, err := n.ctx.GetMFT(5)
	if err != nil {
		return nil, err
	}
	if name == "." {
		return root, nil
	}
	cur := root
	for _, el := range strings.Split(name, "/") {
		var next int64 = -1
		for _, rec := range cur.Dir(n.ctx) {
			fn := rec.File()
			if fn.NameType().Name != "DOS" && strings.EqualFold(fn.Name(), el) {
				next = int64(rec.MftReference())
				if fn.Name() == el {
					break
				}
			}
		}
		if next < 0 {
			return nil, &fs.PathError{Op: "lstat", Path: name, Err: fs.ErrNotExist}
		}
		if cur, err = n.ctx.GetMFT(next); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return cur, nil
}

func (n *ntfsFS) entry(name string, id int64, m *ntfs.MFT_ENTRY) Entry {
	e := Entry{Name: name, Mode: 0o644, Inode: uint64(id)}
	for _, fi := range ntfs.Stat(n.ctx, m) {
		if strings.Contains(fi.Name, ":") {
			continue // an alternate data stream
		}
		e.Size, e.ModTime = fi.Size, fi.Mtime
		if fi.IsDir {
			e.Mode, e.Size = fs.ModeDir|0o755, 0
		}
		break
	}
	return e
}

func (n *ntfsFS) Lstat(name string) (Entry, error) {
	m, err := n.lookup(name)
	if err != nil {
		return Entry{}, err
	}
	return n.entry(path.Base(name), int64(m.Record_number()), m), nil
}

func (n *ntfsFS) ReadDir(name string) ([]Entry, error) {
	dir, err := n.lookup(name)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []Entry
	for _, rec := range dir.Dir(n.ctx) {
		fn := rec.File()
		nm := fn.Name()
		if fn.NameType().Name == "DOS" || seen[nm] || nm == "." || name == "." && strings.HasPrefix(nm, "$") {
			continue // 8.3 aliases, duplicates from index slack, and the root's metadata files
		}
		seen[nm] = true
		id := int64(rec.MftReference())
		m, err := n.ctx.GetMFT(id)
		if err != nil {
			return nil, fmt.Errorf("%s: MFT record %d: %w", path.Join(name, nm), id, err)
		}
		out = append(out, n.entry(nm, id, m))
	}
	return out, nil
}

func (n *ntfsFS) Open(name string) (File, error) {
	m, err := n.lookup(name)
	if err != nil {
		return nil, err
	}
	e := n.entry(path.Base(name), 0, m)
	if e.Mode.IsDir() {
		return nil, fmt.Errorf("%s: %w", name, ErrNotRegular)
	}
	rng, err := ntfs.OpenStream(n.ctx, m, 128, ntfs.WILDCARD_STREAM_ID, ntfs.WILDCARD_STREAM_NAME)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &sizedReader{r: rng, size: e.Size}, nil
}

// sizedReader bounds a reader at the file's size and reports io.EOF past it.
type sizedReader struct {
	r    io.ReaderAt
	size int64
}

func (s *sizedReader) Size() int64  { return s.size }
func (s *sizedReader) Close() error { return nil }
func (s *sizedReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= s.size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), s.size-off)
	n, err := s.r.ReadAt(p[:want], off)
	if n == int(want) {
		err = nil
		if want < int64(len(p)) {
			err = io.EOF
		}
	} else if err == nil || err == io.EOF {
		err = fmt.Errorf("file ends after %d of %d bytes: the file system is damaged", off+int64(n), s.size)
	}
	return n, err
}
