package s3store_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/tree"
)

var fastKDF = repo.KDFParams{N: 1 << 10, R: 8, P: 1}

// initRepo makes a repository on be (encrypted when password is not empty) with packs small
// enough that a test folder makes several, including multipart ones.
func initRepo(t *testing.T, be store.Backend, password string) {
	t.Helper()
	if err := be.Create(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := repo.Init(context.Background(), be, repo.InitOptions{PackSize: 6 << 20, Password: []byte(password), KDF: fastKDF,
		Chunker: repo.ChunkerParams{Min: 64 << 10, Avg: 256 << 10, Max: 1 << 20}})
	if err != nil {
		t.Fatalf("init %s: %v", be.Location(), err)
	}
}

func openRepo(t *testing.T, be store.Backend, password string) *repo.Repository {
	t.Helper()
	var pw []byte
	if password != "" {
		pw = []byte(password)
	}
	r, err := repo.Open(context.Background(), be, repo.Options{TempDir: t.TempDir(), Hostname: "test", Password: pw})
	if err != nil {
		t.Fatalf("open %s: %v", be.Location(), err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// makeFolder writes a folder of files (some shared between seeds, so backups deduplicate).
func makeFolder(t *testing.T, seed int) string {
	t.Helper()
	dir := t.TempDir()
	for i := 0; i < 6; i++ {
		sub := filepath.Join(dir, "d", string(rune('a'+i)))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		shared := dataOf(uint64(1000+i), 300_000+i*1000)
		own := dataOf(uint64(seed*100+i), 700_000+i*5000)
		if err := os.WriteFile(filepath.Join(sub, "shared"), shared, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sub, "own"), own, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// backupFolder stores dir as a files snapshot and returns its id.
func backupFolder(t *testing.T, r *repo.Repository, dir, host string) repo.ID {
	t.Helper()
	return backupFolderWith(t, r, dir, host, tree.Options{})
}

// backupFolderWith is backupFolder with the tree backup's options (a test that needs blobs in
// packs in a known order backs up with one worker).
func backupFolderWith(t *testing.T, r *repo.Repository, dir, host string, o tree.Options) repo.ID {
	t.Helper()
	id, err := tryBackupFolder(context.Background(), r, dir, host, o)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func tryBackupFolder(ctx context.Context, r *repo.Repository, dir, host string, o tree.Options) (repo.ID, error) {
	res, err := tree.Backup(ctx, r, []string{dir}, o)
	if err != nil {
		return repo.ID{}, err
	}
	return r.SaveSnapshot(ctx, &repo.Snapshot{Time: time.Now(), Host: host, Kind: repo.SnapshotFiles, Source: dir,
		Paths: []string{dir}, Tree: &res.Root, Stats: res.Stats})
}

// assertRestores restores snapshot sid of r and compares every file with dir.
func assertRestores(t *testing.T, r *repo.Repository, sid repo.ID, dir string) {
	t.Helper()
	ctx := context.Background()
	sn, err := r.LoadSnapshot(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	if errs, err := tree.Restore(ctx, r, *sn.Tree, target, tree.RestoreOptions{}); err != nil || len(errs) > 0 {
		t.Fatalf("restore %s: %v %v", sid.Short(), err, errs)
	}
	n := 0
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		want, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		got, err := os.ReadFile(filepath.Join(target, p))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("snapshot %s: %s differs after restore (%v)", sid.Short(), p, err)
		}
		n++
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("compare %s: %v (%d files)", dir, err, n)
	}
}

func dataOf(seed uint64, n int) []byte {
	b := make([]byte, n)
	x := seed*0x9E3779B97F4A7C15 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}

func mustCheck(t *testing.T, r *repo.Repository) *repo.CheckReport {
	t.Helper()
	rep, err := r.Check(context.Background(), repo.CheckOptions{ReadData: true})
	if err != nil || !rep.OK() {
		t.Fatalf("check --read-data: %v %+v", err, rep)
	}
	return rep
}
