package tree

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
	"weak"

	"github.com/snapferry/snapferry/images/gcpace"
	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/images/repo"
)

// onDataLoad is a BlobStore that calls hook before the n-th data blob load (counting from 1).
type onDataLoad struct {
	repo.BlobStore
	mu    sync.Mutex
	loads int
	n     int
	hook  func()
}

// IndexMemory passes the wrapped store's index size on, as tightenGC asks it.
func (s *onDataLoad) IndexMemory() int64 {
	return gcpace.IndexMemory(s.BlobStore)
}

func (s *onDataLoad) LoadBlob(ctx context.Context, t repo.BlobType, id repo.ID, buf []byte) ([]byte, error) {
	if t == repo.DataBlob {
		s.mu.Lock()
		s.loads++
		hit := s.loads == s.n
		s.mu.Unlock()
		if hit {
			s.hook()
		}
	}
	return s.BlobStore.LoadBlob(ctx, t, id, buf)
}

// A restore keeps only the trees it still works in reachable: the walker's path, the subtrees
// loaded ahead of it and those of files queued for the workers; not every tree it has passed.
// It kept all of them (the /usr/share restore peaked at 122 MiB RSS). Counted with weak
// pointers after a collection, well into a restore of 300 folders with a folder each inside.
func TestRestoreKeepsFewTreesReachable(t *testing.T) {
	ctx := context.Background()
	mem := memblobs.New(1 << 20)
	now := time.Now()
	const dirs, workers = 300, 1
	var top []repo.Node
	for i := range dirs {
		// Two chunks: a file of its own, not one of a batch (one load per file).
		a, b := saveData(t, mem, fmt.Appendf(nil, "dir %d part 1\n", i)), saveData(t, mem, fmt.Appendf(nil, "dir %d part 2\n", i))
		size := uint64(len(fmt.Sprintf("dir %d part 1\n", i)) + len(fmt.Sprintf("dir %d part 2\n", i)))
		inner := saveTree(t, mem, repo.Node{Name: "f", Type: repo.NodeFile, Mode: 0o644, Size: size, ModTime: now, Content: []repo.ID{a, b}})
		// A folder inside: its directory entry lives in the outer folder's tree.
		sub := saveTree(t, mem, repo.Node{Name: "s", Type: repo.NodeDir, Mode: 0o755 | uint32(os.ModeDir), ModTime: now, Subtree: &inner})
		top = append(top, repo.Node{Name: fmt.Sprintf("d%03d", i), Type: repo.NodeDir, Mode: 0o755 | uint32(os.ModeDir), ModTime: now, Subtree: &sub})
	}
	root := saveTree(t, mem, top...)

	var mu sync.Mutex
	var seen []weak.Pointer[repo.Node]
	reachable := -1
	bs := &onDataLoad{BlobStore: mem, n: 2 * (dirs - 50), hook: func() {
		runtime.GC()
		runtime.GC()
		mu.Lock()
		defer mu.Unlock()
		reachable = 0
		for _, w := range seen {
			if w.Value() != nil {
				reachable++
			}
		}
	}}
	opts := RestoreOptions{Workers: workers, treeLoaded: func(tr *repo.Tree) {
		// The node array is what nodes kept elsewhere point into (a tree's header may be gone
		// while its nodes stay).
		mu.Lock()
		seen = append(seen, weak.Make(&tr.Nodes[0]))
		mu.Unlock()
	}}
	errs, err := Restore(ctx, bs, root, t.TempDir(), opts)
	if err != nil || len(errs) != 0 {
		t.Fatalf("restore: %v %v", err, errs)
	}
	// The root and the subtrees loaded ahead of the walker; two trees (the file's folder and
	// the one above, whose node of it restore keeps) for the folder the walker is in, the file
	// the worker writes and the files queued for it (2 per worker plus the one being handed
	// over); the inner folder loaded ahead.
	bound := 1 + prefetchAhead + 2*(1+1+2*workers+1) + 1
	if reachable < 0 || reachable > bound {
		t.Fatalf("after %d of %d folders: %d of %d trees loaded so far still reachable, want at most %d",
			dirs-50, dirs, reachable, len(seen), bound)
	}
	t.Logf("%d of %d trees loaded so far reachable (bound %d)", reachable, len(seen), bound)
}
