package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
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

// init takes a missing or empty folder only, and says what it found otherwise.
func TestInitRefusesFoldersWithData(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "state")
	full := filepath.Join(dir, "full")
	os.MkdirAll(filepath.Join(full, "sub"), 0o755)
	for i := range 740 {
		os.WriteFile(filepath.Join(full, "sub", "f"+strconv.Itoa(i)), []byte("data"), 0o644)
	}
	r := mustSF(t, home, 1, "init", full)
	if !strings.Contains(r.stderr, "740 files") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("init into a folder of 740 files:\n%s", r.stderr)
	}
	if _, err := os.Stat(filepath.Join(full, "data")); err == nil {
		t.Fatal("init wrote into a folder of user data")
	}
	repoDir := filepath.Join(dir, "repo")
	mustSF(t, home, 0, "init", repoDir)
	r = mustSF(t, home, 1, "init", repoDir)
	if !strings.Contains(r.stderr, "repository already") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("init over a repository:\n%s", r.stderr)
	}
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "f"), []byte("something"), 0o644)
	mustSF(t, home, 0, "backup", src, "--to", repoDir)
	os.Remove(filepath.Join(repoDir, "config"))
	r = mustSF(t, home, 1, "init", repoDir)
	if !strings.Contains(r.stderr, "no config: looks like a repository whose config was lost; refusing") {
		t.Fatalf("init over packs without a config:\n%s", r.stderr)
	}
	if _, err := os.Stat(filepath.Join(repoDir, "config")); err == nil {
		t.Fatal("init wrote a new config beside the old packs")
	}
}

// A restore's job history counts the bytes it restored (it said "read 0 B").
func TestRestoreHistoryCountsBytes(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "state")
	repoDir := filepath.Join(dir, "repo")
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(tree, 0o755)
	os.WriteFile(filepath.Join(tree, "f"), []byte(strings.Repeat("restore me\n", 1000)), 0o644)
	mustSF(t, home, 0, "init", repoDir)
	mustSF(t, home, 0, "backup", tree, "--to", repoDir)
	mustSF(t, home, 0, "restore", "latest", "--from", repoDir, "--target", filepath.Join(dir, "out"))
	var jobs []struct {
		Name      string `json:"name"`
		BytesRead int64  `json:"bytes_read"`
	}
	out := mustSF(t, home, 0, "jobs", "--json").stdout
	if err := json.Unmarshal([]byte(out), &jobs); err != nil {
		t.Fatalf("jobs --json: %v\n%s", err, out)
	}
	for _, j := range jobs {
		if j.Name == "restore" {
			if j.BytesRead != 11000 {
				t.Fatalf("restore job counts %d bytes, want 11000:\n%s", j.BytesRead, out)
			}
			return
		}
	}
	t.Fatalf("no restore job in the history:\n%s", out)
}
