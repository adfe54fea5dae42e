package disk

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/snapferry/snapferry/images/disk/memblobs"
	"github.com/snapferry/snapferry/images/overwrite"
	"github.com/snapferry/snapferry/images/repo"
)

// backUpImage makes a sparse image with mode 0644 and a known mtime and backs it up.
func backUpImage(t *testing.T, bs repo.BlobStore) (string, repo.Disk, time.Time) {
	t.Helper()
	src := tempPath(t, "disk.img")
	makeSparse(t, src, 3<<20+100, region{0, memblobs.RandBytes(1, 5000)}, region{2 << 20, memblobs.RandBytes(2, 70000)})
	if err := os.Chmod(src, 0o644); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2022, 5, 6, 7, 8, 9, 123456789, time.UTC)
	if err := os.Chtimes(src, mtime.Add(time.Hour), mtime); err != nil {
		t.Fatal(err)
	}
	d, _, err := Backup(context.Background(), bs, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return src, d, mtime
}

// An image restore keeps the file's mode and times, as a folder restore does.
func TestRestoreKeepsModeAndTimes(t *testing.T) {
	bs := memblobs.New(1 << 20)
	_, d, mtime := backUpImage(t, bs)
	dst := tempPath(t, "restored.img")
	if err := Restore(context.Background(), bs, d, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 || !fi.ModTime().Equal(mtime) {
		t.Fatalf("restored mode %v mtime %v, want 0644 and %v", fi.Mode(), fi.ModTime(), mtime)
	}
}

// A failed restore leaves nothing under the final name (nor a temporary file).
func TestFailedRestoreLeavesNoImage(t *testing.T) {
	bs := memblobs.New(1 << 20)
	_, d, _ := backUpImage(t, bs)
	// Remove the block of the second region.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(walkMap(context.Background(), bs, d, func(i int64, id repo.ID) error {
		if i == 2 && !id.IsZero() {
			bs.Remove(repo.DataBlob, id)
		}
		return nil
	}))
	dir := t.TempDir()
	dst := filepath.Join(dir, "restored.img")
	if err := Restore(context.Background(), bs, d, dst, RestoreOptions{}); err == nil {
		t.Fatal("restore with a missing block succeeded")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("failed restore left %v", entries)
	}
}

// An existing identical image is left as it is; one that differs is kept unless Overwrite.
func TestRestoreOverExistingImage(t *testing.T) {
	bs := memblobs.New(1 << 20)
	_, d, _ := backUpImage(t, bs)
	dst := tempPath(t, "restored.img")
	ctx := context.Background()
	if err := Restore(ctx, bs, d, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	var before unix.Stat_t
	if err := unix.Stat(dst, &before); err != nil {
		t.Fatal(err)
	}
	if err := Restore(ctx, bs, d, dst, RestoreOptions{}); err != nil {
		t.Fatalf("restore over an identical image: %v", err)
	}
	var after unix.Stat_t
	if err := unix.Stat(dst, &after); err != nil {
		t.Fatal(err)
	}
	if after.Ino != before.Ino || after.Ctim != before.Ctim {
		t.Fatal("an identical image was rewritten")
	}
	f, err := os.OpenFile(dst, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("MY LOCAL EDIT"), 1<<20+7); err != nil { // in a hole of the backup
		t.Fatal(err)
	}
	f.Close()
	err = Restore(ctx, bs, d, dst, RestoreOptions{})
	var nr *overwrite.NotReplaced
	if !errors.As(err, &nr) || len(nr.Paths) != 1 || nr.Paths[0] != dst {
		t.Fatalf("restore over a changed image: %v, want it kept", err)
	}
	if b, _ := os.ReadFile(dst); !strings.Contains(string(b[1<<20:1<<20+30]), "MY LOCAL EDIT") {
		t.Fatal("changed image replaced without Overwrite")
	}
	if err := Restore(ctx, bs, d, dst, RestoreOptions{Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dst); strings.Contains(string(b), "MY LOCAL EDIT") {
		t.Fatal("Overwrite did not replace the image")
	}
	if entries, _ := os.ReadDir(filepath.Dir(dst)); len(entries) != 1 {
		t.Fatalf("left beside the image: %v", entries)
	}
}
