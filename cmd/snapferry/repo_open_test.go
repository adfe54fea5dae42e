package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/store/local"
)

// A repository opened to read (restore, ls, mount) gets the state folder's temp folder too, so
// its index keeps 8 bytes per blob in memory, not 52: a restore of 500 000 files peaked at
// 78 MiB with the index in memory, 42 MiB with the spill file. A reader whose state folder
// cannot be created still opens the repository.
func TestOpenRepoToReadSpillsIndex(t *testing.T) {
	ctx := context.Background()
	spec := filepath.Join(t.TempDir(), "repo")
	be := local.New(spec)
	if _, err := repo.Init(ctx, be, repo.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err := repo.Open(ctx, be, repo.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	for i := range n {
		data := fmt.Appendf(nil, "blob %d", i)
		if _, err := w.SaveBlob(ctx, repo.DataBlob, w.BlobID(data), data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	w.Close()

	perBlob := func(home string) float64 {
		a := &app{ctx: ctx, home: home}
		r, err := a.openRepo(spec, false)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		data := []byte("blob 17")
		if !r.HasBlob(repo.DataBlob, r.BlobID(data)) {
			t.Fatal("a stored blob is not found")
		}
		return float64(r.IndexMemory()) / n
	}
	if got := perBlob(t.TempDir()); got > 16 {
		t.Fatalf("a reader's index holds %.1f bytes per blob, want at most 16 (8 and the spill file's unwritten tail)", got)
	}
	// A home that is a file: no state folder, the index stays in memory.
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := perBlob(notDir); got < 40 {
		t.Fatalf("without a state folder the index holds %.1f bytes per blob; want the in-memory index", got)
	}
}
