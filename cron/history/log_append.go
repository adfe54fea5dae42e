package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gofrs/flock"

	"github.com/snapferry/snapferry/cron/clock"
)

// File names inside the state folder.
const (
	FileName     = "snapferry-history.jsonl" // current file; rotated ones are FileName.1 (newest) ... FileName.Keep
	LockFileName = "snapferry-history.lock"  // sidecar flock; never deleted
)

// Options configure a Log. Only Dir is required.
type Options struct {
	Dir      string        // state folder (created when missing)
	MaxBytes int64         // rotate before the current file would pass this size; 0: 4 MiB
	Keep     int           // rotated files to keep; 0: 4 (so at most 5 files)
	Clock    clock.Clock   // record times; nil: the wall clock
	Warn     func(string)  // receives warnings about skipped lines; nil: dropped
	Lock     time.Duration // longest wait for the lock; 0: 30s
}

// Log is the job history in one state folder. Safe for concurrent use by goroutines and
// processes.
type Log struct {
	path, lockPath string
	maxBytes       int64
	keep           int
	clock          clock.Clock
	warn           func(string)
	lockWait       time.Duration
}

// Open checks the options; it touches no file.
func Open(o Options) (*Log, error) {
	if o.Dir == "" {
		return nil, errors.New("job history: no state folder given (set --home or SNAPFERRY_HOME)")
	}
	if o.MaxBytes < 0 || o.Keep < 0 {
		return nil, fmt.Errorf("job history: MaxBytes %d and Keep %d must not be negative", o.MaxBytes, o.Keep)
	}
	l := &Log{path: filepath.Join(o.Dir, FileName), lockPath: filepath.Join(o.Dir, LockFileName),
		maxBytes: o.MaxBytes, keep: o.Keep, clock: o.Clock, warn: o.Warn, lockWait: o.Lock}
	if l.maxBytes == 0 {
		l.maxBytes = 4 << 20
	}
	if l.keep == 0 {
		l.keep = 4
	}
	if l.clock == nil {
		l.clock = clock.System{}
	}
	if l.warn == nil {
		l.warn = func(string) {}
	}
	if l.lockWait == 0 {
		l.lockWait = 30 * time.Second
	}
	return l, nil
}

// Path is the current history file.
func (l *Log) Path() string { return l.path }

// Append writes rec as one line. Time defaults to now and V to the current format version;
// long lists and error text are shortened (see Record).
func (l *Log) Append(ctx context.Context, rec Record) error {
	if err := rec.validate(); err != nil {
		return err
	}
	fl, err := l.lock(ctx, true)
	if err != nil {
		return fmt.Errorf("append to %s: %w", l.path, err)
	}
	defer fl.Unlock()
	return l.appendLocked(rec)
}

// appendLocked writes a validated record; the caller holds the exclusive lock.
func (l *Log) appendLocked(rec Record) error {
	rec = rec.capped()
	rec.V = formatVersion
	if rec.Time.IsZero() {
		rec.Time = l.clock.Now()
	}
	rec.Time = rec.Time.UTC()
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode history record of job %s: %w", rec.Job, err)
	}
	line = append(line, '\n')
	if err := l.rotateIfFull(int64(len(line))); err != nil {
		return err
	}
	return l.appendLine(line)
}

// appendLine writes line in one write(2) on an O_APPEND descriptor. If the file does not end in
// a newline (a writer died mid-line), a newline goes first, in the same write, so the torn bytes
// stay a line of their own that readers skip.
func (l *Log) appendLine(line []byte) error {
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open %s: %w", l.path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", l.path, err)
	}
	if fi.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, fi.Size()-1); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read end of %s: %w", l.path, err)
		}
		if last[0] != '\n' {
			line = append([]byte{'\n'}, line...)
		}
	}
	if _, err := f.Write(line); err != nil {
		return fmt.Errorf("append to %s: %w", l.path, err)
	}
	// fsync: the history is what tells the user tomorrow whether last night's backup ran.
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", l.path, err)
	}
	return f.Close()
}

// rotateIfFull shifts the files when adding n bytes would pass MaxBytes. A single record larger
// than MaxBytes still goes into a fresh file of its own. Caller holds the exclusive lock.
func (l *Log) rotateIfFull(n int64) error {
	fi, err := os.Stat(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stat %s: %w", l.path, err)
	}
	if fi.Size() == 0 || fi.Size()+n <= l.maxBytes {
		return nil
	}
	if err := os.Remove(l.rotated(l.keep)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("rotate job history: remove %s: %w", l.rotated(l.keep), err)
	}
	for i := l.keep - 1; i >= 1; i-- {
		if err := os.Rename(l.rotated(i), l.rotated(i+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rotate job history: rename %s: %w", l.rotated(i), err)
		}
	}
	if err := os.Rename(l.path, l.rotated(1)); err != nil {
		return fmt.Errorf("rotate job history: rename %s: %w", l.path, err)
	}
	return nil
}

// rotated is the name of the i-th rotated file (1 is the newest).
func (l *Log) rotated(i int) string { return l.path + "." + strconv.Itoa(i) }

// lock takes the sidecar flock, exclusive for writers and shared for readers.
func (l *Log) lock(ctx context.Context, exclusive bool) (*flock.Flock, error) {
	if err := os.MkdirAll(filepath.Dir(l.lockPath), 0o755); err != nil {
		return nil, fmt.Errorf("create state folder: %w", err)
	}
	lctx, cancel := context.WithTimeout(ctx, l.lockWait)
	defer cancel()
	fl := flock.New(l.lockPath)
	try := fl.TryRLockContext
	if exclusive {
		try = fl.TryLockContext
	}
	ok, err := try(lctx, 10*time.Millisecond)
	if ok {
		return fl, nil
	}
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("lock %s: still held by another snapferry after %s", l.lockPath, l.lockWait)
	}
	return nil, fmt.Errorf("lock %s: %w", l.lockPath, err)
}
