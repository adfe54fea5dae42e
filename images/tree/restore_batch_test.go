package tree

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/disk/memblobs"
	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/store/local"
	"github.com/snapferry/snapferry/images/store/storetest"
)

// openCounted reopens the repository in dir behind a storetest.LoadCounter.
func openCounted(t *testing.T, dir string) (*repo.Repository, *storetest.LoadCounter) {
	t.Helper()
	c := &storetest.LoadCounter{Backend: local.New(dir)}
	return memblobs.OpenRepoOn(t, c), c
}

// Hundreds of small files restore through a handful of pack reads, not one per file, and come
// back identical next to a multi-chunk file, empty files and a hard-linked pair.
func TestRestoreBatchesSmallFiles(t *testing.T) {
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "src")
	const files = 300
	for i := range files {
		data := memblobs.RandBytes(uint64(i), 10+(i*331)%5000)
		writeFile(t, filepath.Join(src, fmt.Sprintf("d%d/f%03d", i%3, i)), data, 0o640)
	}
	writeFile(t, filepath.Join(src, "empty"), nil, 0o600)
	writeFile(t, filepath.Join(src, "big"), memblobs.RandBytes(99, 300<<10), 0o644)
	writeFile(t, filepath.Join(src, "linked"), []byte("two names\n"), 0o644)
	must(t, os.Link(filepath.Join(src, "linked"), filepath.Join(src, "d1/linked-too")))

	repoDir, r := memblobs.LocalRepo(t, 1<<20, repo.ChunkerParams(smallChunks))
	res, err := Backup(ctx, r, []string{src}, Options{Chunking: smallChunks})
	must(t, err)
	memblobs.CommitAndReopen(t, r, repoDir, &repo.Snapshot{Time: time.Now(), Host: "test", Kind: repo.SnapshotFiles,
		Source: src, Paths: []string{src}, Tree: &res.Root, Stats: res.Stats})

	rc, counter := openCounted(t, repoDir)
	// One read per tree and per chunk of big is what a restore without batches needs besides
	// the small files.
	alone := int64(1) // the root tree
	must(t, List(ctx, rc, res.Root, func(p string, n *repo.Node) error {
		switch {
		case n.Type == repo.NodeDir:
			alone++
		case strings.HasSuffix(p, "/big"), strings.HasSuffix(p, "/linked"): // hard-linked files are not batched
			alone += int64(len(n.Content))
		}
		return nil
	}))
	counter.PackLoads.Store(0)
	target := filepath.Join(t.TempDir(), "restore")
	errs, err := Restore(ctx, rc, res.Root, target, RestoreOptions{})
	if err != nil || len(errs) != 0 {
		t.Fatalf("restore: %v %v", err, errs)
	}
	compareTrees(t, src, filepath.Join(target, src))
	// The 300 small files take a read or two per batch of 64 (two where a batch spans packs or
	// the backup's workers left a wide gap).
	if small := counter.PackLoads.Load() - alone; small > files/20 {
		t.Fatalf("%d pack reads for %d small files: not batched", small, files)
	}
}

// In a batch, a file whose blob is missing and a file that cannot be created are reported,
// and the files around them are restored.
func TestRestoreBatchKeepsGoingPastBadFiles(t *testing.T) {
	ctx := context.Background()
	repoDir, r := memblobs.LocalRepo(t, 1<<20, repo.ChunkerParams(smallChunks))
	now := time.Now()
	var nodes []repo.Node
	for i := range 10 {
		content := []repo.ID{saveData(t, r, []byte(fmt.Sprintf("file %d\n", i)))}
		if i == 3 {
			content = []repo.ID{{9, 9, 9}} // not in the repository
		}
		nodes = append(nodes, repo.Node{Name: fmt.Sprintf("f%d", i), Type: repo.NodeFile, Mode: 0o644,
			Size: uint64(len(fmt.Sprintf("file %d\n", i))), ModTime: now, Content: content})
	}
	root := saveTree(t, r, nodes...)
	must(t, r.Flush(ctx))
	r.Close()
	rc, _ := openCounted(t, repoDir)

	target := t.TempDir()
	writeFile(t, filepath.Join(target, "f6", "in-the-way"), []byte("x"), 0o644) // a directory is kept where f6 would go
	errs, err := Restore(ctx, rc, root, target, RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, e := range errs {
		failed = append(failed, e.Path+": "+e.Error())
	}
	got := strings.Join(failed, "\n")
	if !strings.Contains(got, "/f3: load chunk 0") || !strings.Contains(got, "/f6: exists and differs") {
		t.Fatalf("errors:\n%s\nwant f3's missing blob and f6 kept", got)
	}
	if _, err := os.Lstat(filepath.Join(target, "f3")); err == nil {
		t.Fatal("f3, which could not be restored, was left (empty)")
	}
	noPartials(t, target)
	for i := range 10 {
		if i == 3 || i == 6 {
			continue
		}
		b, err := os.ReadFile(filepath.Join(target, fmt.Sprintf("f%d", i)))
		if err != nil || string(b) != fmt.Sprintf("file %d\n", i) {
			t.Fatalf("f%d: %q %v", i, b, err)
		}
	}
}
