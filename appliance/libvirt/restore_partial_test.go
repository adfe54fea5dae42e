package libvirt

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/snapferry/snapferry/images/disk"
	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/images/overwrite"
	"github.com/snapferry/snapferry/images/repo"
)

// A --disk-dir restore writes each disk under the restores' partial name first: a file that a
// killed restore left there is written over (it was ours), the disk ends up whole under its
// name, and no partial file stays. Before, the temp name was private to this path and a
// leftover made the next restore refuse with exit 3, naming its own temp file.
func TestRestoreDiskOverAKilledRunsPartialFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	data := memblobs.RandBytes(7, 3*testBlock+100)
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, r := memblobs.LocalRepo(t, testBlock, repo.ChunkerParams{})
	dk, _, err := disk.Backup(ctx, r, src, disk.Options{Name: "vda"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "restored.img")
	partial := filepath.Join(dir, overwrite.PartialName("restored.img"))
	if err := os.WriteFile(partial, []byte("what a killed restore left"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := restoreDisk(ctx, r, dk, target, RestoreOptions{Format: "raw"}); err != nil {
		t.Fatalf("restore over a killed run's partial file: %v", err)
	}
	got, err := os.ReadFile(target)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("restored disk differs (err %v)", err)
	}
	if _, err := os.Lstat(partial); !os.IsNotExist(err) {
		t.Fatalf("the partial file is still there: %v", err)
	}
}
