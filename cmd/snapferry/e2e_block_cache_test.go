package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/disk/disktest"

	"github.com/snapferry/snapferry/images/memblobs"
)

// The block fingerprint cache through the real binary: the second backup of an image vouches for
// its unchanged blocks and says so, the restore is the changed image, --rehash trusts nothing,
// and a backup removes caches no backup wrote for 90 days.
func TestBlockCacheIncrementalImage(t *testing.T) {
	dir := t.TempDir()
	home, repoDir := filepath.Join(dir, "state"), filepath.Join(dir, "repo")
	img := filepath.Join(dir, "disk.img")
	sparseImage(t, img, 64<<20, 0, 5, 30, 40) // four 1 MiB blocks of data
	cacheDir := filepath.Join(home, "cache", "blocks")

	mustSF(t, home, 0, "init", repoDir)
	stale := filepath.Join(cacheDir, "0000-stale")
	os.MkdirAll(cacheDir, 0o700)
	os.WriteFile(stale, []byte("x"), 0o600)
	old := time.Now().Add(-100 * 24 * time.Hour)
	os.Chtimes(stale, old, old)

	first := backupStats(t, home, img, repoDir)
	if first.BlocksCached != 0 {
		t.Fatalf("first backup: %+v", first)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("a cache untouched for 100 days survived the backup: %v", err)
	}
	ents, _ := os.ReadDir(cacheDir)
	if len(ents) != 1 {
		t.Fatalf("cache folder holds %d files, want one for the image", len(ents))
	}
	if fi, err := os.Stat(filepath.Join(cacheDir, ents[0].Name())); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache file: %v %v, want mode 0600", fi, err)
	}

	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(memblobs.RandBytes(99, 4096), 5<<20+100); err != nil {
		t.Fatal(err)
	}
	f.Close()
	second := mustSF(t, home, 0, "backup", img, "--to", repoDir)
	if !strings.Contains(second.stdout, "blocks: 3 unchanged") || !strings.Contains(second.stdout, "/ 3 reused blobs") {
		t.Fatalf("second backup does not report 3 cached, reused blocks:\n%s", second.stdout)
	}
	out := filepath.Join(dir, "out")
	mustSF(t, home, 0, "restore", "latest", "--source", img, "--from", repoDir, "--target", out)
	if disktest.FileSum(t, filepath.Join(out, "disk.img")) != disktest.FileSum(t, img) {
		t.Fatal("restored image differs from the changed source")
	}

	re := backupStats(t, home, img, repoDir, "--rehash")
	if re.BlocksCached != 0 || re.BlobsReused < 4 {
		t.Fatalf("--rehash backup: %+v", re)
	}
	if again := backupStats(t, home, img, repoDir); again.BlocksCached != 4 {
		t.Fatalf("backup after --rehash: %+v", again)
	}
	mustSF(t, home, 0, "check", "--repo", repoDir, "--read-data")
}

// backupStats backs up one image with --json and returns its stats.
func backupStats(t *testing.T, home, img, repoDir string, extra ...string) statsJSON {
	t.Helper()
	r := mustSF(t, home, 0, append([]string{"backup", img, "--to", repoDir, "--json"}, extra...)...)
	var sum struct {
		Items []struct {
			Stats statsJSON `json:"stats"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || len(sum.Items) != 1 {
		t.Fatalf("decode summary %q: %v", r.stdout, err)
	}
	return sum.Items[0].Stats
}

type statsJSON struct {
	BlobsNew      int   `json:"blobs_new"`
	BlobsReused   int   `json:"blobs_reused"`
	BlocksCached  int   `json:"blocks_cached"`
	BlocksPatched int   `json:"blocks_patched"`
	BytesStored   int64 `json:"bytes_stored"`
}
