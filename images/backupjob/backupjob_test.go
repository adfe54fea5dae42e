package backupjob

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/images/repo"
)

// TestImageAndFilesCommitWithParents: a first image and files backup commit snapshots with the
// stored-bytes figure; the second run of each names the first as its parent and stores little.
func TestImageAndFilesCommitWithParents(t *testing.T) {
	ctx := context.Background()
	_, r := memblobs.LocalRepo(t, 64<<10, repo.ChunkerParams{})
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, memblobs.RandBytes(1, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(dir, "etc")
	os.MkdirAll(tree, 0o755)
	os.WriteFile(filepath.Join(tree, "hosts"), []byte("127.0.0.1 localhost\n"), 0o644)
	o := Options{Host: "h1", Tags: []string{"t"}, CacheDir: filepath.Join(dir, "cache")}
	first, err := Image(ctx, r, img, false, o)
	if err != nil || first.Stats.BytesStored == 0 {
		t.Fatalf("first image backup: %+v, %v", first, err)
	}
	files1, err := Files(ctx, r, []string{tree}, o)
	if err != nil || len(files1.Warnings) != 0 {
		t.Fatalf("first files backup: %+v, %v", files1, err)
	}
	if o.Parents, err = r.LatestBySource(ctx, "h1"); err != nil {
		t.Fatal(err)
	}
	second, err := Image(ctx, r, img, false, o)
	if err != nil || second.Stats.BytesStored >= first.Stats.BytesStored {
		t.Fatalf("second image backup stored %d bytes after %d: %v", second.Stats.BytesStored, first.Stats.BytesStored, err)
	}
	files2, err := Files(ctx, r, []string{tree}, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		res    Result
		parent repo.ID
	}{{second, first.Snapshot}, {files2, files1.Snapshot}} {
		si, err := r.FindSnapshot(ctx, c.res.Snapshot.String(), repo.SnapshotFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if si.Snapshot.Parent == nil || *si.Snapshot.Parent != c.parent || si.Snapshot.Host != "h1" || len(si.Snapshot.Tags) != 1 {
			t.Fatalf("snapshot %s: parent %v, want %s; %+v", c.res.Snapshot.Short(), si.Snapshot.Parent, c.parent.Short(), si.Snapshot)
		}
	}
}
