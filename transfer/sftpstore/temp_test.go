package sftpstore_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/transfer/sshtest"
)

// TestPruneAndCheckSeeTempFilesOverSFTP: temp files that killed uploads left in an sftp://
// repository (a pack's in its shard folder, an index file's, a config's at the root) are counted
// by check and removed by prune once they predate every live writer; a fresh one is spared. On
// main before this change the sftp store had no CleanTemp: check counted 0 and prune removed 0.
func TestPruneAndCheckSeeTempFilesOverSFTP(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "repo")
	be := newStore(t, s, root)
	defer be.Close()
	if err := be.Create(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Init(ctx, be, repo.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	plant := func(rel string, size int, at time.Time) string {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stale := []string{
		plant("data/ab/"+store.TempPrefix+"pack", 3000, old),
		plant("index/"+store.TempPrefix+"index", 200, old),
		plant(store.TempPrefix+"config", 100, old),
	}
	fresh := plant("snapshots/"+store.TempPrefix+"busy", 50, time.Now())

	r, err := repo.Open(ctx, be, repo.Options{TempDir: t.TempDir(), Hostname: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	chk, err := r.Check(ctx, repo.CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if chk.TempFiles != 4 || chk.TempBytes != 3350 {
		t.Fatalf("check counted %d temp files (%d bytes), want 4 (3350)", chk.TempFiles, chk.TempBytes)
	}
	rep, err := r.Prune(ctx, repo.PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.TempFilesRemoved != 3 || rep.TempBytesRemoved != 3300 {
		t.Fatalf("prune removed %d temp files (%d bytes), want the 3 stale ones (3300)", rep.TempFilesRemoved, rep.TempBytesRemoved)
	}
	for _, p := range stale {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s survived prune: %v", p, err)
		}
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("prune removed a temp file written a moment ago (a live upload's): %v", err)
	}
}
