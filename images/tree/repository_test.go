package tree

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/images/repo"
)

// The whole path through the real repository: back up with the repository's chunk sizes,
// commit a snapshot, reopen, check, back up again with the parent, restore.
func TestRoundTripThroughRepository(t *testing.T) {
	ctx := context.Background()
	dir, src := makeFixture(t)
	repoDir, r := memblobs.LocalRepo(t, 1<<20, repo.ChunkerParams(smallChunks))
	chunking := Chunking(r.Config().Chunker)
	res, err := Backup(ctx, r, []string{src}, Options{Chunking: chunking})
	if err != nil {
		t.Fatal(err)
	}
	r2, sn := memblobs.CommitAndReopen(t, r, repoDir, &repo.Snapshot{Time: time.Now(), Host: "test", Kind: repo.SnapshotFiles,
		Source: src, Paths: []string{src}, Tree: &res.Root, Stats: res.Stats})
	again, err := Backup(ctx, r2, []string{src}, Options{Chunking: chunking, Parent: sn.Tree})
	if err != nil {
		t.Fatal(err)
	}
	must(t, r2.Flush(ctx))
	// Only the trees of the temp dirs above src may change (the test made folders there).
	if again.Stats.BytesRead != 0 || again.Stats.FilesUnchanged != 10 || subtree(t, r2, again.Root, src) != subtree(t, r2, *sn.Tree, src) {
		t.Fatalf("backup with parent from the repository: %+v", again.Stats)
	}
	target := filepath.Join(dir, "restore")
	errs, err := Restore(ctx, r2, *sn.Tree, target, RestoreOptions{})
	if err != nil || len(errs) != 0 {
		t.Fatalf("restore: %v %v", err, errs)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(target, src, "a/b/c"), 0o755) })
	compareTrees(t, src, filepath.Join(target, src))
}

// subtree finds the tree id of directory p in the snapshot tree root.
func subtree(t *testing.T, bs repo.BlobStore, root repo.ID, p string) repo.ID {
	t.Helper()
	var id repo.ID
	must(t, List(context.Background(), bs, root, func(q string, n *repo.Node) error {
		if q == p && n.Subtree != nil {
			id = *n.Subtree
		}
		return nil
	}))
	if id.IsZero() {
		t.Fatalf("%s not in the snapshot", p)
	}
	return id
}
