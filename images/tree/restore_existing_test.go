package tree

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/images/disk/memblobs"
	"github.com/snapferry/snapferry/images/overwrite"
	"github.com/snapferry/snapferry/images/repo"
)

// One rule for every restore: an existing entry whose content differs is kept unless
// Overwrite; an identical file is left as it is (not rewritten: same inode, same ctime).
func TestRestoreKeepsWhatDiffersUnlessOverwrite(t *testing.T) {
	for _, store := range []string{"memblobs", "repository"} {
		t.Run(store, func(t *testing.T) {
			ctx := context.Background()
			dir, src := makeFixture(t)
			var bs repo.BlobStore = memblobs.New(1 << 20)
			if store == "repository" {
				_, r := memblobs.LocalRepo(t, 1<<20, repo.ChunkerParams(smallChunks))
				bs = r
			}
			res, err := Backup(ctx, bs, []string{src}, Options{Chunking: smallChunks})
			must(t, err)
			if r, ok := bs.(*repo.Repository); ok {
				must(t, r.Flush(ctx))
			}
			target := filepath.Join(dir, "restore")
			errs, err := Restore(ctx, bs, res.Root, target, RestoreOptions{})
			if err != nil || len(errs) != 0 {
				t.Fatalf("first restore: %v %v", err, errs)
			}
			t.Cleanup(func() { os.Chmod(filepath.Join(target, src, "a/b/c"), 0o755) })
			root := filepath.Join(target, src)
			edited := filepath.Join(root, "small.txt")
			must(t, os.WriteFile(edited, []byte("MY LOCAL EDIT\n"), 0o644))
			bigEdited := filepath.Join(root, "big.bin")
			f, err := os.OpenFile(bigEdited, os.O_WRONLY, 0)
			must(t, err)
			_, err = f.WriteAt([]byte("XYZ"), 300<<10) // same size, one chunk differs
			must(t, err)
			must(t, f.Close())
			before := lstat(t, filepath.Join(root, "exact.bin"))
			bigBefore := lstat(t, filepath.Join(root, "a/b/c/deep.txt"))

			errs, err = Restore(ctx, bs, res.Root, target, RestoreOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var kept []string
			for _, fe := range errs {
				if !errors.Is(fe, overwrite.ErrDiffers) {
					t.Errorf("unexpected error %v", fe)
				}
				kept = append(kept, fe.Path)
			}
			want := []string{filepath.Join(src, "big.bin"), filepath.Join(src, "small.txt")}
			if strings.Join(kept, " ") != strings.Join(want, " ") {
				t.Fatalf("not replaced %v, want %v", kept, want)
			}
			if b, _ := os.ReadFile(edited); string(b) != "MY LOCAL EDIT\n" {
				t.Fatalf("local edit replaced without Overwrite: %q", b)
			}
			for p, st := range map[string]uintptr{"exact.bin": 0, "a/b/c/deep.txt": 1} {
				was := before
				if st == 1 {
					was = bigBefore
				}
				now := lstat(t, filepath.Join(root, p))
				if now.Ino != was.Ino || now.Ctim != was.Ctim {
					t.Errorf("%s is identical but was rewritten", p)
				}
			}
			noPartials(t, target)

			errs, err = Restore(ctx, bs, res.Root, target, RestoreOptions{Overwrite: true})
			if err != nil || len(errs) != 0 {
				t.Fatalf("restore with Overwrite: %v %v", err, errs)
			}
			compareTrees(t, src, root)
			noPartials(t, target)
		})
	}
}

// noPartials fails if a temporary restore name is left below dir.
func noPartials(t *testing.T, dir string) {
	t.Helper()
	must(t, filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err == nil && strings.Contains(filepath.Base(p), overwrite.PartialSuffix) {
			t.Errorf("%s left behind", p)
		}
		return err
	}))
}
