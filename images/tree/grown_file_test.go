package tree

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/images/disk/memblobs"
	"github.com/snapferry/snapferry/images/repo"
)

// appendTo appends n bytes to path.
func appendTo(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	if _, err := f.Write(memblobs.RandBytes(9, n)); err != nil {
		t.Error(err)
	}
}

// A file that grows between its lstat and its read is stored as it was read, and the backup
// says so: one warning per file naming it and both sizes (it used to be stored without a word).
func TestBackupWarnsAboutFilesThatGrew(t *testing.T) {
	dir := t.TempDir()
	small, large, quiet := filepath.Join(dir, "app.log"), filepath.Join(dir, "big.db"), filepath.Join(dir, "quiet.txt")
	writeFile(t, small, []byte(strings.Repeat("line\n", 20)), 0o644)
	writeFile(t, large, memblobs.RandBytes(3, 300<<10), 0o644)
	writeFile(t, quiet, []byte("unchanged"), 0o644)
	// The walk asks Exclude about each entry after its lstat and before any read: the moment a
	// writer appending to a log would strike.
	grow := func(p string, n *repo.Node) bool {
		if p == small || p == large {
			appendTo(t, p, 4096)
		}
		return false
	}
	bs := memblobs.New(1 << 20)
	res, err := Backup(context.Background(), bs, []string{dir}, Options{Chunking: smallChunks, Exclude: grow})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) != 0 {
		t.Errorf("errors: %v", res.Errors)
	}
	got := map[string]string{}
	for _, w := range res.Warnings {
		got[w.Path] = w.Err.Error()
	}
	if w := got[small]; !strings.Contains(w, "grew from 100 to 4196 bytes") || !strings.Contains(w, "first 100 bytes") {
		t.Errorf("small file warning %q", w)
	}
	if w := got[large]; !strings.Contains(w, "grew from 307200 to 311296 bytes") {
		t.Errorf("large file warning %q", w)
	}
	if w, ok := got[quiet]; ok || len(got) != 2 {
		t.Errorf("warnings %v: want exactly the two grown files (quiet.txt: %q)", got, w)
	}
}
