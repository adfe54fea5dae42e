package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every restore follows one rule (docs/restore.md): what differs is kept without --overwrite,
// listed, and the run exits 3 with the hint; what is identical is left alone; --overwrite
// replaces. An image comes back with its mode, as a folder's files do.
func TestRestoreKeepsLocalEditsWithoutOverwrite(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "state")
	repoDir := filepath.Join(dir, "repo")
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(tree, 0o755)
	os.WriteFile(filepath.Join(tree, "RBASH"), []byte("original\n"), 0o644)
	os.WriteFile(filepath.Join(tree, "other"), []byte("other\n"), 0o644)
	img := filepath.Join(dir, "disk.img")
	sparseImage(t, img, 8<<20, 0, 5)
	os.Chmod(img, 0o644)
	mustSF(t, home, 0, "init", repoDir)
	mustSF(t, home, 0, "backup", tree, img, "--to", repoDir)

	out := filepath.Join(dir, "r")
	mustSF(t, home, 0, "restore", "latest", "--source", tree, "--from", repoDir, "--target", out)
	edited := filepath.Join(out, tree, "RBASH")
	os.WriteFile(edited, []byte("MY LOCAL EDIT\n"), 0o644)
	r := mustSF(t, home, 3, "restore", "latest", "--source", tree, "--from", repoDir, "--target", out)
	if !strings.Contains(r.stderr, filepath.Join(tree, "RBASH")) || !strings.Contains(r.stderr, "--overwrite") || strings.Contains(r.stderr, "other") {
		t.Fatalf("kept file not listed with the hint:\n%s", r.stderr)
	}
	if b, _ := os.ReadFile(edited); string(b) != "MY LOCAL EDIT\n" {
		t.Fatalf("local edit replaced without --overwrite: %q", b)
	}
	mustSF(t, home, 0, "restore", "latest", "--source", tree, "--from", repoDir, "--target", out, "--overwrite")
	if b, _ := os.ReadFile(edited); string(b) != "original\n" {
		t.Fatalf("--overwrite did not replace: %q", b)
	}

	mustSF(t, home, 0, "restore", "latest", "--source", img, "--from", repoDir, "--target", out)
	got := filepath.Join(out, "disk.img")
	if fi, err := os.Stat(got); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("restored image: %v, %v; want mode 0644", fi, err)
	}
	mustSF(t, home, 0, "restore", "latest", "--source", img, "--from", repoDir, "--target", out) // identical
	f, _ := os.OpenFile(got, os.O_WRONLY, 0)
	f.WriteAt([]byte("MY LOCAL EDIT"), 7<<20)
	f.Close()
	r = mustSF(t, home, 3, "restore", "latest", "--source", img, "--from", repoDir, "--target", out)
	if !strings.Contains(r.stderr, got) || !strings.Contains(r.stderr, "--overwrite") {
		t.Fatalf("kept image not listed with the hint:\n%s", r.stderr)
	}
	mustSF(t, home, 0, "restore", "latest", "--source", img, "--from", repoDir, "--target", out, "--overwrite")
	if b, _ := os.ReadFile(got); strings.Contains(string(b), "MY LOCAL EDIT") {
		t.Fatal("--overwrite did not replace the image")
	}
}
