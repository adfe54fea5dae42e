package store

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"time"
)

// Kind is the folder class of a repository file. The names are part of the on-disk format.
type Kind string

// The kinds of files a repository holds (see docs/repository-format.md).
const (
	KindConfig    Kind = "config"    // the single "config" file
	KindKeys      Kind = "keys"      // key files (encryption; reserved)
	KindData      Kind = "data"      // pack files, sharded by the first two hex digits of the name
	KindIndex     Kind = "index"     // index files
	KindSnapshots Kind = "snapshots" // snapshot manifests
	KindLocks     Kind = "locks"     // lock files
)

// Kinds lists every kind, in the order a repository is created.
var Kinds = []Kind{KindConfig, KindKeys, KindData, KindIndex, KindSnapshots, KindLocks}

// Handle names one file in a repository. For KindConfig the Name is ignored.
type Handle struct {
	Kind Kind
	Name string
}

func (h Handle) String() string {
	if h.Kind == KindConfig {
		return "config"
	}
	return string(h.Kind) + "/" + h.Name
}

// FileInfo describes one stored file.
type FileInfo struct {
	Name string
	Size int64
	// ModTime is when the file was written, if the backend knows (zero when it does not). Prune
	// uses it to spare packs a concurrent writer may still be indexing; unknown counts as young.
	ModTime time.Time
}

// ErrNotExist is returned (wrapped) when a file is missing; test with errors.Is(err, fs.ErrNotExist)
// as well, which it matches.
var ErrNotExist = fs.ErrNotExist

// ErrExist is returned (wrapped) by Save when the file already exists. Repository files are
// immutable: an existing file is never overwritten (the append-only guarantee rests on this).
var ErrExist = fs.ErrExist

// ErrNoSpace is returned (wrapped) when the store is full. It is permanent for the current run.
var ErrNoSpace = errors.New("no space left on the store")

// Backend stores the files of one repository. Implementations must be safe for concurrent use.
type Backend interface {
	// Location is a human-readable description used in messages (a path or URL, no secrets).
	Location() string

	// Save writes a new file atomically: readers see either nothing or the whole file, also
	// after a crash (temp name, fsync, rename). It fails with ErrExist if the file exists.
	Save(ctx context.Context, h Handle, rd io.Reader) error

	// Load opens the file for reading from offset; length <= 0 means up to the end.
	Load(ctx context.Context, h Handle, offset, length int64) (io.ReadCloser, error)

	// Stat returns the file's size or ErrNotExist.
	Stat(ctx context.Context, h Handle) (FileInfo, error)

	// List calls fn for every file of a kind, in no particular order. Temp files never show.
	List(ctx context.Context, k Kind, fn func(FileInfo) error) error

	// Remove deletes a file; removing a missing file returns ErrNotExist.
	Remove(ctx context.Context, h Handle) error

	// Create makes the folders of a new repository; it fails if a config already exists.
	Create(ctx context.Context) error

	Close() error
}

// SpaceReporter is implemented by backends that can tell how many bytes are free.
type SpaceReporter interface {
	FreeSpace(ctx context.Context) (int64, error)
}

// Cleaner is implemented by backends with leftovers that are neither temp files nor unfinished
// uploads (versions hidden by delete markers on an Object Lock bucket). Prune calls Cleanup while
// backups may be running (its lock does not exclude them), so it must remove only what no
// writer can still be using, judged by age; it returns how many leftovers it removed.
type Cleaner interface {
	Cleanup(ctx context.Context) (int, error)
}

// TempCleaner is implemented by backends that can hold leftovers of interrupted Saves: temp
// files (TempPrefix) of a writer killed mid-upload, or of a `serve` killed with uploads open;
// on an object store, unfinished multipart uploads (their time: when the upload started).
// CleanTemp finds them all and removes those last written before `before`; a zero `before`
// only counts them. The repository passes a time before which no live writer can have written
// (prune_leftovers.go), so it never removes an upload in progress.
type TempCleaner interface {
	CleanTemp(ctx context.Context, before time.Time) (TempReport, error)
}

// TempReport counts temp files found and removed by CleanTemp.
type TempReport struct {
	Found, Removed           int
	BytesFound, BytesRemoved int64
}
