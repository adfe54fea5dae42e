package replica

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
	"lukechampine.com/blake3"

	"github.com/snapferry/snapferry/transfer/serve/jail"
	"github.com/snapferry/snapferry/transfer/wire"
)

// Hooks let tests stop the far side at known points. The zero value does nothing.
type Hooks struct {
	// AfterBlockWrite runs after the n-th block (1-based, counted per Receiver) was written in
	// place, its undo record already durable.
	AfterBlockWrite func(n int64)
	// AfterCommitRecord runs once an update's commit record is durable, before its new sidecars
	// are installed and its journal removed.
	AfterCommitRecord func()
}

// Receiver is the far side of replica updates for one wire session. It is safe for concurrent
// use; each set has at most one open update, and Close rolls back any that did not commit.
type Receiver struct {
	jail    *jail.Jail
	logf    func(format string, args ...any)
	hooks   Hooks
	written atomic.Int64

	mu  sync.Mutex
	txs map[string]*tx
}

// NewReceiver serves replica ops below j's root. logf gets one line per notable event.
func NewReceiver(j *jail.Jail, logf func(format string, args ...any), hooks Hooks) *Receiver {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &Receiver{jail: j, logf: logf, hooks: hooks, txs: make(map[string]*tx)}
}

// tx is one open update of a set.
type tx struct {
	mu      sync.Mutex
	set     string
	paths   undoPaths
	lock    *os.File
	jw      *journalWriter
	files   map[string]*txFile // disk files written, by path below the root
	ordinal int64              // jFile records so far
	smalls  map[string]bool
	copies  int
	// failed is set when an op of the update failed half way; such an update can only be
	// aborted, never committed.
	failed            error
	afterCommitRecord func()
}

// txFile is a disk file written in the update.
type txFile struct {
	f          *os.File
	sidecarNew *os.File
	bs         int64
	seed       uint64 // of the new sidecar's fast hashes
}

// undoPaths are where a set's journal lives: below the root in a server-private folder, named
// by a hash of the set so any set name fits a file name. Recover finds them all there.
type undoPaths struct {
	dir, journal, lock, copies string
}

func undoPathsFor(j *jail.Jail, set string) (undoPaths, error) {
	dir := filepath.Join(j.Root(), jail.PrivatePrefix+"undo")
	if err := j.Within(dir); err != nil {
		return undoPaths{}, err
	}
	sum := blake3.Sum256([]byte(set))
	id := hex.EncodeToString(sum[:16])
	return undoPaths{dir: dir, journal: filepath.Join(dir, id+".journal"), lock: filepath.Join(dir, id+".lock"),
		copies: filepath.Join(dir, id+".d")}, nil
}

// lockSet takes the set's lock file without waiting; another process (or session) holding it
// is updating the same replica right now.
func lockSet(p undoPaths, set string) (*os.File, error) {
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return nil, fmt.Errorf("create undo folder %s: %w", p.dir, err)
	}
	f, err := os.OpenFile(p.lock, os.O_RDWR|os.O_CREATE|noFollow, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", p.lock, err)
	}
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	switch {
	case err == nil:
	case errors.Is(err, unix.EWOULDBLOCK):
		f.Close()
		return nil, fmt.Errorf("replica set %q is being updated by another run right now: %w", set, wire.ErrRefused)
	case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EINVAL):
		// A file system without flock (some NAS mounts, VMFS through some layers): go on
		// unguarded; two runs of one set at the same time are then not kept apart.
	default:
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", p.lock, err)
	}
	return f, nil
}

// Handle serves one replica op. A nil error means it answered the request itself.
func (r *Receiver) Handle(ctx context.Context, st *wire.Stream, req wire.Request) error {
	switch req.Op {
	case wire.OpRepBegin, wire.OpRepCommit, wire.OpRepAbort:
		a, err := decodeBeginArgs(req.Args)
		if err != nil {
			return fmt.Errorf("%s: %w", req.Op, err)
		}
		if err := jail.CheckRel(a.Set); err != nil {
			return fmt.Errorf("%s: %w", req.Op, err)
		}
		switch req.Op {
		case wire.OpRepBegin:
			err = r.begin(a.Set)
		case wire.OpRepCommit:
			err = r.commit(a.Set)
		default:
			err = r.abort(a.Set)
		}
		if err != nil {
			return err
		}
		return st.Respond(wire.Response{})
	case wire.OpRepHashes, wire.OpRepWrite, wire.OpRepPut, wire.OpRepMark:
		a, err := decodeFileArgs(req.Args)
		if err != nil {
			return fmt.Errorf("%s: %w", req.Op, err)
		}
		rel := path.Join(a.Set, a.Name)
		if err := jail.CheckRel(a.Set); err != nil {
			return fmt.Errorf("%s: %w", req.Op, err)
		}
		if err := jail.CheckRel(a.Name); err != nil {
			return fmt.Errorf("%s: %w", req.Op, err)
		}
		p, err := r.jail.Resolve(rel)
		if err != nil {
			return fmt.Errorf("%s: %w", req.Op, err)
		}
		// Every file op needs the set's update open in this session: its lock is what keeps a
		// sidecar rebuild from racing another run's writes.
		t, err := r.openTx(a.Set)
		if err != nil {
			return err
		}
		switch req.Op {
		case wire.OpRepHashes:
			return r.hashes(ctx, st, t, p, a)
		case wire.OpRepMark:
			return markOf(st, t, p)
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.failed != nil {
			return fmt.Errorf("%s %s: %w: an earlier op of this update failed (%v); abort it", req.Op, rel, wire.ErrRefused, t.failed)
		}
		if t.smalls[rel] || t.files[rel] != nil {
			return fmt.Errorf("%s %s: %w: written twice in one update", req.Op, rel, wire.ErrRefused)
		}
		if req.Op == wire.OpRepWrite {
			err = r.write(ctx, st, t, rel, p, a)
		} else {
			err = r.put(st, t, rel, p, a)
		}
		if err != nil {
			t.failed = err
		}
		return err
	}
	return fmt.Errorf("op %s: %w: not a replica op", req.Op, wire.ErrRefused)
}

func (r *Receiver) begin(set string) error {
	setDir, err := r.jail.Resolve(set)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, open := r.txs[set]; open {
		return fmt.Errorf("begin replica update of %q: %w: one is already open in this session", set, wire.ErrRefused)
	}
	p, err := undoPathsFor(r.jail, set)
	if err != nil {
		return err
	}
	lock, err := lockSet(p, set)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			lock.Close()
		}
	}()
	if _, err := os.Lstat(p.journal); err == nil {
		if err := rollbackJournal(r.jail, p, r.logf); err != nil {
			return fmt.Errorf("begin replica update of %q: roll back the interrupted one first: %w", set, err)
		}
	}
	if err := os.MkdirAll(setDir, 0o755); err != nil {
		return fmt.Errorf("create replica folder %s: %w", setDir, err)
	}
	if err := os.RemoveAll(p.copies); err != nil {
		return fmt.Errorf("clear %s: %w", p.copies, err)
	}
	if err := os.Mkdir(p.copies, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", p.copies, err)
	}
	jw, err := createJournal(p.journal, set)
	if err != nil {
		return err
	}
	if err := syncDir(p.dir); err != nil {
		jw.close()
		return err
	}
	r.txs[set] = &tx{set: set, paths: p, lock: lock, jw: jw, files: make(map[string]*txFile), smalls: make(map[string]bool),
		afterCommitRecord: r.hooks.AfterCommitRecord}
	ok = true
	return nil
}

func (r *Receiver) openTx(set string) (*tx, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.txs[set]
	if t == nil {
		return nil, fmt.Errorf("replica set %q has no open update: %w (begin one first)", set, wire.ErrRefused)
	}
	return t, nil
}

// takeTx removes the set's update from the table, for commit and abort.
func (r *Receiver) takeTx(set string) (*tx, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.txs[set]
	if t == nil {
		return nil, fmt.Errorf("replica set %q has no open update: %w", set, wire.ErrRefused)
	}
	delete(r.txs, set)
	return t, nil
}

// hashes streams the fast hashes of a replica file, rebuilding its sidecar first if needed.
func (r *Receiver) hashes(ctx context.Context, st *wire.Stream, t *tx, p string, a fileArgs) error {
	head, sc, err := openFreshSidecar(ctx, t, p, a.BlockSize)
	if err != nil || sc == nil {
		if err == nil {
			err = st.Respond(wire.Response{Body: hashesHeader{}.encode()})
		}
		return err
	}
	defer sc.Close()
	// Streamed without the update's lock: the client reads these hashes while it sends the
	// write of the same file, which needs the lock; the open file keeps this snapshot.
	if err := st.Respond(wire.Response{Streamed: true, Body: hashesHeader{Exists: true, Size: head.size, Count: head.count, Seed: head.seed}.encode()}); err != nil {
		return nil
	}
	if err := sendFastColumn(st, sc, head.count); err != nil {
		st.CloseWithError(fmt.Errorf("send hashes of %s: %w", p, err))
		return nil
	}
	st.CloseWrite()
	return nil
}

// openFreshSidecar makes the sidecar fresh under the update's lock and opens it; a missing
// replica file gives a nil file.
func openFreshSidecar(ctx context.Context, t *tx, p string, bs int64) (sidecarHead, *os.File, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.failed != nil {
		return sidecarHead{}, nil, fmt.Errorf("hashes of %s: %w: an earlier op of this update failed (%v); abort it", p, wire.ErrRefused, t.failed)
	}
	_, head, exists, err := ensureSidecar(ctx, p, bs)
	if err != nil || !exists {
		return head, nil, err
	}
	sc, err := os.Open(sidecarPath(p))
	if err != nil {
		return head, nil, fmt.Errorf("open sidecar of %s: %w", p, err)
	}
	return head, sc, nil
}

// sendFastColumn streams the fast hash of each sidecar entry.
func sendFastColumn(w io.Writer, sc *os.File, count int64) error {
	br := bufio.NewReaderSize(io.NewSectionReader(sc, sidecarHeader, count*entrySize), 256<<10)
	bw := bufio.NewWriterSize(w, 64<<10)
	var e [entrySize]byte
	for i := int64(0); i < count; i++ {
		if _, err := io.ReadFull(br, e[:]); err != nil {
			return err
		}
		if _, err := bw.Write(e[:FastSize]); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// put replaces a small file atomically, after saving the old one for the undo journal.
func (r *Receiver) put(st *wire.Stream, t *tx, rel, p string, a fileArgs) error {
	rec := smallRec{name: rel, mode: a.Mode}
	fi, err := os.Lstat(p)
	switch {
	case err == nil && !fi.Mode().IsRegular():
		return fmt.Errorf("put %s: %w: the replica has a %s there", rel, wire.ErrRefused, fi.Mode().Type())
	case err == nil:
		rec.existed = true
		rec.mode = uint32(fi.Mode().Perm())
		t.copies++
		rec.copy = fmt.Sprintf("%d", t.copies)
		if err := copyFileAtomic(p, filepath.Join(t.paths.copies, rec.copy), 0o600); err != nil {
			return fmt.Errorf("save old %s for undo: %w", rel, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("put %s: %w", rel, err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("create folder of %s: %w", rel, err)
	}
	if err := t.jw.append(jSmall, rec.encode()); err != nil {
		return err
	}
	if err := t.jw.sync(); err != nil {
		return err
	}
	t.smalls[rel] = true
	err = writeAtomic(p, fs.FileMode(a.Mode), func(f *os.File) error {
		n, err := io.Copy(f, st)
		if err == nil && n != a.Size {
			err = fmt.Errorf("got %d bytes, announced %d", n, a.Size)
		}
		return err
	})
	if err != nil {
		return err
	}
	return st.Respond(wire.Response{})
}

func (r *Receiver) commit(set string) error {
	t, err := r.takeTx(set)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	err = t.failed
	if err != nil {
		err = fmt.Errorf("%w: an op of this update failed: %v", wire.ErrRefused, err)
	} else {
		err = t.commit()
	}
	if err == nil {
		r.logf("replica %q: update committed (%d disk files, %d small files)", set, len(t.files), len(t.smalls))
		return nil
	}
	r.logf("commit of replica %q failed, rolling back: %v", set, err)
	if rbErr := r.rollbackTx(t); rbErr != nil {
		return fmt.Errorf("commit replica %q: %w (and roll back: %v)", set, err, rbErr)
	}
	return fmt.Errorf("commit replica %q: %w", set, err)
}

// commit makes the update durable: data, then new sidecars, then the commit record; after that
// the sidecars are installed and the journal removed (a crash in between rolls forward).
func (t *tx) commit() error {
	for rel, tf := range t.files {
		if err := tf.f.Sync(); err != nil {
			return fmt.Errorf("fsync %s: %w", rel, err)
		}
		fi, err := tf.f.Stat()
		if err != nil {
			return fmt.Errorf("stat %s: %w", rel, err)
		}
		head := sidecarHead{blockSize: tf.bs, size: fi.Size(), mtime: fi.ModTime().UnixNano(), count: blockCount(fi.Size(), tf.bs), seed: tf.seed}
		if _, err := tf.sidecarNew.WriteAt(head.encode(), 0); err != nil {
			return fmt.Errorf("write sidecar of %s: %w", rel, err)
		}
		if err := tf.sidecarNew.Truncate(entryOffset(head.count)); err != nil {
			return fmt.Errorf("write sidecar of %s: %w", rel, err)
		}
		if err := tf.sidecarNew.Sync(); err != nil {
			return fmt.Errorf("fsync sidecar of %s: %w", rel, err)
		}
	}
	if err := t.jw.append(jCommit, nil); err != nil {
		return err
	}
	if err := t.jw.sync(); err != nil {
		return err
	}
	if t.afterCommitRecord != nil {
		t.afterCommitRecord()
	}
	for _, tf := range t.files {
		final := tf.f.Name()
		if err := os.Rename(tf.sidecarNew.Name(), sidecarPath(final)); err != nil {
			return fmt.Errorf("install sidecar of %s: %w", final, err)
		}
		if err := syncDir(filepath.Dir(final)); err != nil {
			return err
		}
	}
	t.closeFiles()
	return t.finish()
}

// finish removes the journal and the saved copies and releases the set.
func (t *tx) finish() error {
	t.jw.close()
	defer t.lock.Close()
	if err := os.Remove(t.paths.journal); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove undo journal: %w", err)
	}
	if err := os.RemoveAll(t.paths.copies); err != nil {
		return fmt.Errorf("remove saved copies: %w", err)
	}
	return syncDir(t.paths.dir)
}

func (t *tx) closeFiles() {
	for _, tf := range t.files {
		tf.f.Close()
		tf.sidecarNew.Close()
	}
}

func (r *Receiver) abort(set string) error {
	t, err := r.takeTx(set)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return r.rollbackTx(t)
}

// rollbackTx undoes an open update from its journal on disk. Records still in the writer's
// buffer were never synced, so the changes they announce were never made either.
func (r *Receiver) rollbackTx(t *tx) error {
	t.closeFiles()
	t.jw.close()
	defer t.lock.Close()
	return rollbackJournal(r.jail, t.paths, r.logf)
}

// Close rolls back every update of this session that did not commit: a client that went away
// mid-update leaves the previous replica, not a torn one.
func (r *Receiver) Close() error {
	r.mu.Lock()
	txs := r.txs
	r.txs = make(map[string]*tx)
	r.mu.Unlock()
	var errs []error
	for set, t := range txs {
		t.mu.Lock()
		r.logf("session ended during the update of replica %q: rolling back", set)
		if err := r.rollbackTx(t); err != nil {
			errs = append(errs, fmt.Errorf("roll back replica %q: %w", set, err))
		}
		t.mu.Unlock()
	}
	return errors.Join(errs...)
}
