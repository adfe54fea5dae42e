package s3store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/store/metacache"
	"github.com/snapferry/snapferry/images/tree"
	"github.com/snapferry/snapferry/transfer/s3store"
	"github.com/snapferry/snapferry/transfer/s3store/rgwtest"
)

// TestUnchangedAfterFullIsCheap: the first nothing-changed backup after a full one, on the same
// host (same metadata cache), reads its parent's trees from the cache the full backup filled as
// it stored them, instead of one GET per directory (before: 3 037 requests for /usr/share, each
// of its directories; here more than 120).
func TestUnchangedAfterFullIsCheap(t *testing.T) {
	const dirs = 120
	srv := rgwtest.Get(t)
	s, ft := faultyStore(t, srv, s3store.Options{})
	cacheDir := t.TempDir()
	initRepo(t, metacache.New(s, cacheDir), "")
	src := t.TempDir()
	for i := 0; i < dirs; i++ {
		d := filepath.Join(src, fmt.Sprintf("d%03d", i))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "f"), dataOf(uint64(i), 2000), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	backup := func(parent *repo.ID) (repo.ID, int64) {
		r := openRepo(t, metacache.New(s, cacheDir), "")
		defer r.Close()
		before := ft.requests.Load()
		res, err := tree.Backup(ctx, r, []string{src}, tree.Options{Parent: parent})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.SaveSnapshot(ctx, &repo.Snapshot{Time: time.Now(), Host: "test", Kind: repo.SnapshotFiles,
			Source: src, Paths: []string{src}, Tree: &res.Root, Stats: res.Stats}); err != nil {
			t.Fatal(err)
		}
		return res.Root, ft.requests.Load() - before
	}
	full, _ := backup(nil)
	_, n := backup(&full)
	t.Logf("unchanged backup after the full one: %d requests for %d directories", n, dirs)
	if n > 20 {
		t.Errorf("the unchanged backup after the full one made %d requests for %d directories, want at most 20 "+
			"(its parent's trees come from the cache)", n, dirs)
	}
}
