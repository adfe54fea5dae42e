package tree

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/snapferry/snapferry/images/pipeline"
	"github.com/snapferry/snapferry/images/progress"
	"github.com/snapferry/snapferry/images/repo"
)

// Options tune a tree backup. The zero value reads everything with default chunking.
type Options struct {
	// Parent is the root tree of an earlier snapshot of the same paths. Files whose size,
	// mtime and inode match the parent's node at the same path reuse its content unread.
	Parent *repo.ID
	// Chunking sets content-defined chunk sizes; zero means DefaultChunking.
	Chunking Chunking
	// Workers is the number of goroutines reading and storing files; default 4 per CPU,
	// because small-file backups wait on open/read as much as they compute.
	Workers  int
	Progress progress.Reporter
	// Exclude, when set, is asked about every entry found (path is absolute); excluded
	// entries are left out of the snapshot, directories with everything below them.
	Exclude func(path string, n *repo.Node) bool
	// OneFileSystem keeps the walk below each given path on that path's filesystem: mount
	// points are stored as empty directories (backing up "/" must not descend into /proc).
	OneFileSystem bool
}

// FileError is an entry that could not be backed up (or restored). The run goes on; the
// snapshot is partial.
type FileError struct {
	Path string
	Err  error
}

func (e FileError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e FileError) Unwrap() error { return e.Err }

// Result is the outcome of a tree backup.
type Result struct {
	Root   repo.ID     // tree blob of "/": the given paths with their parent directories
	Stats  repo.Stats  // files new/changed/unchanged, bytes read/added, blobs new/reused
	Size   int64       // bytes of every regular file in the tree (repo.Snapshot.Size)
	Errors []FileError // entries that could not be read; their nodes carry Error too
	// Warnings are files stored as they were read but that changed meanwhile: grown (stored
	// up to the size seen), shrunk or modified. Their nodes are complete; the snapshot is not
	// partial, but the user should hear of them.
	Warnings []FileError
}

// Backup stores the files and directories below paths (absolute or relative to the working
// directory) and returns the root tree. The root tree stands for "/": a path /usr/share is
// stored as usr -> share, with usr's own metadata, so restore and ls show full paths. A path
// inside another given path is covered by it. Only failures of the repository, or a path that
// does not exist at all, end the run with an error; unreadable entries land in Result.Errors.
func Backup(ctx context.Context, bs repo.BlobStore, paths []string, opts Options) (Result, error) {
	chunking, err := opts.Chunking.resolve()
	if err != nil {
		return Result{}, fmt.Errorf("back up files: %w", err)
	}
	root, err := selectPaths(paths)
	if err != nil {
		return Result{}, fmt.Errorf("back up files: %w", err)
	}
	defer tightenGC(bs)()
	nworkers := pipeline.IOWorkers(opts.Workers)
	a := &archiver{
		bs:       bs,
		chunking: chunking,
		progress: progress.OrNop(opts.Progress),
		jobs:     make(chan fileJob, 2*nworkers),
		large:    make(chan fileJob, 4),
		// Compressing a chunk is CPU work, so one in flight per core plus one being filled
		// keeps the cores busy; more only pins memory on a memory-starved ESXi host. The I/O
		// workers above are for small files.
		chunkBufs:   newChunkPool(min(pipeline.Workers(0), 6)+1, min(2*chunking.Avg, chunking.Max)),
		exclude:     opts.Exclude,
		oneFS:       opts.OneFileSystem,
		treeLoaders: make(chan struct{}, prefetchLoaders),
	}
	a.senders.Store(2)
	a.progress.Start("files", -1)
	defer a.progress.Done()

	g := pipeline.NewGroup(ctx)
	g.Go(func(ctx context.Context) error {
		defer a.senderDone()
		defer close(a.large)
		var parent *repo.Tree
		if opts.Parent != nil {
			parent = a.loadTree(ctx, *opts.Parent)
		}
		rootDir := &dirState{path: "/"}
		rootDir.pending.Store(1)
		if root.all { // "/" itself was given: walk it like any directory
			var st unix.Stat_t
			if err := unix.Lstat("/", &st); err != nil {
				return fmt.Errorf("lstat /: %w", err)
			}
			rootDir.dev = uint64(st.Dev)
			root = nil
		}
		return a.walkDir(ctx, rootDir, root, parent)
	})
	g.Go(func(ctx context.Context) error {
		defer a.senderDone()
		return a.chunkLargeFiles(ctx)
	})
	g.GoWorkers(nworkers, func(ctx context.Context) error {
		w := a.newWorker()
		for j := range a.jobs {
			if err := w.do(ctx, j); err != nil {
				return err
			}
		}
		return nil
	}, nil)
	if err := g.Wait(); err != nil {
		return Result{}, fmt.Errorf("back up files: %w", err)
	}
	if a.root == nil {
		return Result{}, fmt.Errorf("back up files: internal error: root tree was not saved")
	}
	sort.Slice(a.errors, func(i, j int) bool { return a.errors[i].Path < a.errors[j].Path })
	sort.Slice(a.warnings, func(i, j int) bool { return a.warnings[i].Path < a.warnings[j].Path })
	return Result{Root: *a.root, Stats: a.stats(), Size: a.bytesTotal.Load(), Errors: a.errors, Warnings: a.warnings}, nil
}

// archiver is the state of one Backup run.
type archiver struct {
	bs        repo.BlobStore
	chunking  Chunking
	progress  progress.Reporter
	jobs      chan fileJob // small files and chunks of large ones, for the workers
	large     chan fileJob // files to cut into chunks, for the chunker goroutine
	chunkBufs *chunkPool
	exclude   func(string, *repo.Node) bool
	oneFS     bool
	// treeLoaders is the semaphore of the goroutines prefetching parent-snapshot trees.
	treeLoaders chan struct{}

	filesNew, filesChanged, filesUnchanged  atomic.Int64
	treesReused                             atomic.Int64 // unchanged directories whose parent tree id was reused
	bytesRead, bytesAdded, blobsNew, reused atomic.Int64
	bytesTotal                              atomic.Int64 // sizes of all regular files, read or not

	// senders counts the goroutines that send to jobs (walker, chunker); the last one to
	// finish closes it, so no send can hit a closed channel even when one of them fails.
	senders atomic.Int32

	mu       sync.Mutex
	errors   []FileError
	warnings []FileError
	root     *repo.ID
}

func (a *archiver) stats() repo.Stats {
	return repo.Stats{
		FilesNew:       int(a.filesNew.Load()),
		FilesChanged:   int(a.filesChanged.Load()),
		FilesUnchanged: int(a.filesUnchanged.Load()),
		BytesRead:      a.bytesRead.Load(),
		BytesAdded:     a.bytesAdded.Load(),
		BlobsNew:       int(a.blobsNew.Load()),
		BlobsReused:    int(a.reused.Load()),
	}
}

func (a *archiver) senderDone() {
	if a.senders.Add(-1) == 0 {
		close(a.jobs)
	}
}

// fail records an entry that could not be backed up.
func (a *archiver) fail(path string, err error) {
	a.mu.Lock()
	a.errors = append(a.errors, FileError{Path: path, Err: err})
	a.mu.Unlock()
}

// save stores one blob and counts it.
func (a *archiver) save(ctx context.Context, t repo.BlobType, data []byte) (repo.ID, error) {
	id := a.bs.BlobID(data)
	added, err := a.bs.SaveBlob(ctx, t, id, data)
	if err != nil {
		return id, err
	}
	if added {
		a.blobsNew.Add(1)
		a.bytesAdded.Add(int64(len(data)))
	} else {
		a.reused.Add(1)
	}
	return id, nil
}

// selection is the tree of paths to back up: a node with all set is walked completely, other
// nodes only lead to their children.
type selection struct {
	all      bool
	children map[string]*selection
}

// selectPaths turns the given paths into a selection rooted at "/".
func selectPaths(paths []string) (*selection, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("no paths given")
	}
	root := &selection{children: map[string]*selection{}}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("path %q: %w", p, err)
		}
		s := root
		for _, part := range strings.Split(abs, "/") {
			if s.all {
				break // already covered by a shorter path
			}
			if part == "" {
				continue
			}
			c := s.children[part]
			if c == nil {
				c = &selection{children: map[string]*selection{}}
				s.children[part] = c
			}
			s = c
		}
		s.all = true
		s.children = nil
	}
	return root, nil
}
