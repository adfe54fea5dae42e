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

// treeBackups backs up a folder of dirs directories into a fresh repository on the test RGW,
// each run through a metadata cache in the folder its caller names, and counts requests.
type treeBackups struct {
	t   *testing.T
	s   *s3store.Store
	ft  *faultyTransport
	src string
}

func newTreeBackups(t *testing.T, dirs int) *treeBackups {
	srv := rgwtest.Get(t)
	s, ft := faultyStore(t, srv, s3store.Options{})
	initRepo(t, s, "")
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
	return &treeBackups{t: t, s: s, ft: ft, src: src}
}

// backup runs one backup (with parent, if not nil) with the cache in cacheDir and returns its
// root tree and the requests it made, opening the repository included.
func (b *treeBackups) backup(cacheDir string, parent *repo.ID) (repo.ID, int64) {
	t, ctx := b.t, context.Background()
	before := b.ft.requests.Load()
	r := openRepo(t, metacache.New(b.s, cacheDir), "")
	defer r.Close()
	res, err := tree.Backup(ctx, r, []string{b.src}, tree.Options{Parent: parent})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.SaveSnapshot(ctx, &repo.Snapshot{Time: time.Now(), Host: "test", Kind: repo.SnapshotFiles,
		Source: b.src, Paths: []string{b.src}, Tree: &res.Root, Stats: res.Stats}); err != nil {
		t.Fatal(err)
	}
	if res.Stats.FilesNew+res.Stats.FilesChanged > 0 && parent != nil {
		t.Fatalf("nothing changed, yet %d files new and %d changed", res.Stats.FilesNew, res.Stats.FilesChanged)
	}
	return res.Root, b.ft.requests.Load() - before
}

// TestUnchangedAfterFullIsCheap: the first nothing-changed backup after a full one, on the same
// host (same metadata cache), reads its parent's trees from the cache the full backup filled as
// it stored them, instead of one GET per directory (before: 3 037 requests for /usr/share, each
// of its directories; here 129 for 120 directories).
func TestUnchangedAfterFullIsCheap(t *testing.T) {
	const dirs = 120
	b := newTreeBackups(t, dirs)
	cacheDir := t.TempDir()
	full, _ := b.backup(cacheDir, nil)
	_, n := b.backup(cacheDir, &full)
	t.Logf("unchanged backup after the full one: %d requests for %d directories", n, dirs)
	if n > 25 {
		t.Errorf("the unchanged backup after the full one made %d requests for %d directories, want at most 25 "+
			"(its parent's trees come from the cache)", n, dirs)
	}
}

// TestUnchangedOnAnotherHostBatchesTrees: a host without the trees in its cache (another host
// made the parent snapshot) fetches the tree pack whole, one GET, instead of one per directory
// (more than 120 requests here once) or per batch of siblings (30 when trees shared packs with
// file data; 9 with tree packs); the run after it finds them in its cache.
func TestUnchangedOnAnotherHostBatchesTrees(t *testing.T) {
	const dirs = 120
	b := newTreeBackups(t, dirs)
	full, _ := b.backup(t.TempDir(), nil)
	other := t.TempDir()
	_, n := b.backup(other, &full)
	t.Logf("unchanged backup on another host: %d requests for %d directories", n, dirs)
	if n > 15 {
		t.Errorf("the unchanged backup with an empty cache made %d requests for %d directories, want at most 15 "+
			"(the tree pack fetched whole)", n, dirs)
	}
	_, n = b.backup(other, &full)
	t.Logf("and again on that host: %d requests", n)
	if n > 25 {
		t.Errorf("the second unchanged backup on that host made %d requests, want at most 25 (trees cached)", n)
	}
}
