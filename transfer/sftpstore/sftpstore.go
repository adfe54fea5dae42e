package sftpstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/snapferry/snapferry/images/store"
)

// tempPrefix marks files being written: the shared store.TempPrefix, so either store can clean
// up after the other.
const tempPrefix = store.TempPrefix

// lowSpace is the free space under which a failed write is taken for a full disk.
const lowSpace = 4 << 20

// Options tune a Store. The zero value is fine.
type Options struct {
	// Owner is closed by Close after the SFTP session, e.g. the SSH connection the Store was
	// made on when nothing else uses it.
	Owner io.Closer
	// MaxInFlight is the number of requests in flight per file (0: 64).
	MaxInFlight int
	// MaxPacket is the payload size of one read or write request (0: 32 KiB, which every
	// server must accept; OpenSSH takes up to 255 KiB).
	MaxPacket int
}

// Store is a store.Backend below Root on an SFTP server.
type Store struct {
	c        *sftp.Client
	root     string // as given: relative paths are below the login directory
	location string
	owner    io.Closer
	hardlink bool
	fsync    bool
}

var (
	_ store.Backend       = (*Store)(nil)
	_ store.SpaceReporter = (*Store)(nil)
	_ store.TempCleaner   = (*Store)(nil)
)

// New starts an SFTP session on conn for the repository at root. location names it in
// messages (e.g. "sftp://nas/backup").
func New(conn *ssh.Client, root, location string, opts Options) (*Store, error) {
	inflight := opts.MaxInFlight
	if inflight <= 0 {
		inflight = 64
	}
	packet := sftp.MaxPacketChecked(32 << 10)
	if opts.MaxPacket > 0 {
		packet = sftp.MaxPacketUnchecked(opts.MaxPacket)
	}
	c, err := sftp.NewClient(conn, packet,
		sftp.UseConcurrentWrites(true),
		sftp.UseConcurrentReads(true),
		sftp.MaxConcurrentRequestsPerFile(inflight),
		sftp.UseFstat(true),
	)
	if err != nil {
		return nil, fmt.Errorf("start sftp session for %s (does the host allow the sftp subsystem?): %w", location, err)
	}
	return NewFromClient(c, root, location, opts), nil
}

// NewFromClient uses an SFTP client made elsewhere (for example over a pipe).
func NewFromClient(c *sftp.Client, root, location string, opts Options) *Store {
	if root == "" {
		root = "."
	}
	_, hardlink := c.HasExtension("hardlink@openssh.com")
	_, fsync := c.HasExtension("fsync@openssh.com")
	return &Store{c: c, root: path.Clean(root), location: location, owner: opts.Owner,
		hardlink: hardlink, fsync: fsync}
}

// Location is the description given to New.
func (s *Store) Location() string { return s.location }

// dir is the folder of a handle's file in the shared layout (store.RelDir).
func (s *Store) dir(h store.Handle) string { return path.Join(s.root, store.RelDir(h)) }

// filePath is where a handle's file lives.
func (s *Store) filePath(h store.Handle) string { return path.Join(s.root, store.RelPath(h)) }

func validate(h store.Handle) error { return store.Validate(h) }

// Create makes the root and a folder per kind. It accepts only a missing or empty folder
// (store.Found), as every backend does.
func (s *Store) Create(ctx context.Context) error {
	var found store.Found
	for w := s.c.Walk(s.root); w.Step(); {
		if err := w.Err(); err != nil {
			if w.Path() == s.root && errors.Is(err, fs.ErrNotExist) {
				break
			}
			return fmt.Errorf("look into %s: %w", s.location, s.mapErr(w.Path(), err))
		}
		if w.Stat().IsDir() {
			continue
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(w.Path(), s.root), "/")
		if !found.Add(rel) {
			break
		}
	}
	if err := found.Refusal(s.location); err != nil {
		return err
	}
	for _, k := range store.Kinds {
		if k == store.KindConfig {
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("create repository in %s: %w", s.location, err)
		}
		p := path.Join(s.root, string(k))
		if err := s.c.MkdirAll(p); err != nil {
			return fmt.Errorf("create repository folder %s on %s: %w", p, s.location, s.mapErr(p, err))
		}
	}
	return nil
}

// Save writes a temp file and publishes it without overwriting (see the package doc).
func (s *Store) Save(ctx context.Context, h store.Handle, rd io.Reader) (err error) {
	if err := validate(h); err != nil {
		return fmt.Errorf("save %s on %s: %w", h, s.location, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("save %s: %w", h, err)
	}
	final := s.filePath(h)
	if _, err := s.c.Lstat(final); err == nil {
		return fmt.Errorf("save %s on %s: %w", h, s.location, store.ErrExist)
	}
	dir := s.dir(h)
	tmp := path.Join(dir, tempPrefix+randomSuffix())
	f, err := s.c.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if errors.Is(err, fs.ErrNotExist) {
		// data/ shard folders are made on first use, as in the local layout.
		if mkErr := s.c.MkdirAll(dir); mkErr != nil {
			return fmt.Errorf("save %s: create folder %s on %s: %w", h, dir, s.location, s.mapErr(dir, mkErr))
		}
		f, err = s.c.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	}
	if err != nil {
		return fmt.Errorf("save %s: create %s on %s: %w", h, tmp, s.location, s.mapErr(dir, err))
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = s.c.Remove(tmp)
		}
	}()
	if _, err = f.ReadFrom(newCtxReader(ctx, rd)); err != nil {
		return fmt.Errorf("save %s: write %s on %s: %w", h, tmp, s.location, s.mapErr(dir, err))
	}
	if s.fsync {
		if err = f.Sync(); err != nil {
			return fmt.Errorf("save %s: fsync %s on %s: %w", h, tmp, s.location, s.mapErr(dir, err))
		}
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("save %s: close %s on %s: %w", h, tmp, s.location, s.mapErr(dir, err))
	}
	if err = s.publish(tmp, final); err != nil {
		return fmt.Errorf("save %s on %s: %w", h, s.location, err)
	}
	return nil
}

// publish gives tmp the name final unless final exists. On any error tmp is left for the
// caller to remove.
func (s *Store) publish(tmp, final string) error {
	if s.hardlink {
		err := s.c.Link(tmp, final)
		if err == nil {
			_ = s.c.Remove(tmp)
			return nil
		}
		if _, statErr := s.c.Lstat(final); statErr == nil {
			return store.ErrExist
		}
		// The server's file system may not do hard links (FAT, some NAS mounts): rename below.
	}
	err := s.c.Rename(tmp, final)
	if err == nil {
		return nil
	}
	if _, statErr := s.c.Lstat(final); statErr == nil {
		return store.ErrExist
	}
	return fmt.Errorf("rename %s to %s: %w", tmp, final, err)
}

func randomSuffix() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Load opens the file at offset; length <= 0 reads to the end.
func (s *Store) Load(ctx context.Context, h store.Handle, offset, length int64) (io.ReadCloser, error) {
	if err := store.CheckLoad(ctx, h, offset); err != nil {
		return nil, err
	}
	p := s.filePath(h)
	f, err := s.c.Open(p)
	if err != nil {
		return nil, fmt.Errorf("load %s from %s: %w", h, s.location, err)
	}
	if offset == 0 && length <= 0 {
		// The *sftp.File itself: io.Copy then uses its pipelined WriteTo.
		return f, nil
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("load %s: seek to %d: %w", h, offset, err)
	}
	var r io.Reader = readerOnly{f} // hide WriteTo: it reads the whole file, not from offset
	if length > 0 {
		r = io.LimitReader(f, length)
	}
	return readCloser{r, f}, nil
}

type readerOnly struct{ r io.Reader }

func (r readerOnly) Read(p []byte) (int, error) { return r.r.Read(p) }

type readCloser struct {
	io.Reader
	io.Closer
}

// Stat returns size and modification time.
func (s *Store) Stat(ctx context.Context, h store.Handle) (store.FileInfo, error) {
	if err := validate(h); err != nil {
		return store.FileInfo{}, fmt.Errorf("stat %s: %w", h, err)
	}
	fi, err := s.c.Stat(s.filePath(h))
	if err != nil {
		return store.FileInfo{}, fmt.Errorf("stat %s on %s: %w", h, s.location, err)
	}
	return store.FileInfo{Name: h.Name, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// List calls fn for each finished file of kind k; a missing folder lists nothing.
func (s *Store) List(ctx context.Context, k store.Kind, fn func(store.FileInfo) error) error {
	return store.ListFolders(ctx, s, k, fn)
}

// ReadDir lists a folder below the root (store.FolderReader).
func (s *Store) ReadDir(ctx context.Context, rel string) ([]fs.FileInfo, error) {
	dir := path.Join(s.root, rel)
	entries, err := s.c.ReadDirContext(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("list %s on %s: %w", dir, s.location, err)
	}
	return entries, nil
}

// Remove deletes a file; a missing one is ErrNotExist.
func (s *Store) Remove(ctx context.Context, h store.Handle) error {
	if err := validate(h); err != nil {
		return fmt.Errorf("remove %s: %w", h, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("remove %s: %w", h, err)
	}
	p := s.filePath(h)
	// pkg/sftp's Remove falls back to rmdir when the file is missing and reports that error;
	// Stat first so a missing file is plainly ErrNotExist.
	if _, err := s.c.Lstat(p); err != nil {
		return fmt.Errorf("remove %s from %s: %w", h, s.location, err)
	}
	if err := s.c.Remove(p); err != nil {
		return fmt.Errorf("remove %s from %s: %w", h, s.location, err)
	}
	return nil
}

// CleanTemp finds the temp files of uploads that never finished (a writer killed mid-Save, a
// link cut while a pack was sent) and removes those the server last wrote before `before` (zero:
// only count). The times are the server's, as are the lock times prune derives `before` from.
func (s *Store) CleanTemp(ctx context.Context, before time.Time) (store.TempReport, error) {
	rep, err := store.CleanTempFolders(ctx, s, before)
	if err != nil {
		return rep, fmt.Errorf("temp files in %s: %w", s.location, err)
	}
	return rep, nil
}

// RemoveRel deletes the file at a slash path below the root (store.TempFolders).
func (s *Store) RemoveRel(ctx context.Context, rel string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p := path.Join(s.root, rel)
	if _, err := s.c.Lstat(p); err != nil { // see Remove: a missing file must read as ErrNotExist
		return err
	}
	return s.c.Remove(p)
}

// FreeSpace asks the server's file system (statvfs@openssh.com).
func (s *Store) FreeSpace(ctx context.Context) (int64, error) {
	st, err := s.c.StatVFS(s.root)
	if err != nil {
		return 0, fmt.Errorf("free space of %s: %w", s.location, err)
	}
	return int64(st.Bavail * st.Frsize), nil
}

// Close ends the SFTP session and then closes Options.Owner.
func (s *Store) Close() error {
	err := s.c.Close()
	if s.owner != nil {
		if oerr := s.owner.Close(); err == nil {
			err = oerr
		}
	}
	if err != nil {
		return fmt.Errorf("close %s: %w", s.location, err)
	}
	return nil
}

// mapErr reports a failed write as store.ErrNoSpace when the server's file system in dir is
// (nearly) full: SFTP v3 has no status for ENOSPC, OpenSSH sends a generic failure.
func (s *Store) mapErr(dir string, err error) error {
	var se *sftp.StatusError
	if !errors.As(err, &se) || se.FxCode() != sftp.ErrSSHFxFailure {
		return err
	}
	st, serr := s.c.StatVFS(dir)
	if serr != nil {
		return err
	}
	if st.Bavail*st.Frsize < lowSpace || (st.Files > 0 && st.Favail == 0) {
		return fmt.Errorf("%w: %w", store.ErrNoSpace, err)
	}
	return err
}

// ctxReader stops an upload when ctx ends. Its Size of -1 tells pkg/sftp that the length is
// unknown, which selects its pipelined writer (it only pipelines readers it can size, or these).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func newCtxReader(ctx context.Context, r io.Reader) *ctxReader { return &ctxReader{ctx, r} }

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func (c *ctxReader) Size() int64 { return -1 }
