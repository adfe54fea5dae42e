package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/images/disk/memblobs"
)

// `snapshots` shows what a snapshot holds (the folder's logical size), not what its run read:
// after an incremental backup of an unchanged 3 MiB folder both rows say 3.0 MiB.
func TestSnapshotsShowLogicalSize(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "state")
	repoDir := filepath.Join(dir, "repo")
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(tree, 0o755)
	os.WriteFile(filepath.Join(tree, "big"), memblobs.RandBytes(1, 3<<20), 0o644)
	mustSF(t, home, 0, "init", repoDir)
	mustSF(t, home, 0, "backup", tree, "--to", repoDir)
	os.WriteFile(filepath.Join(tree, "small"), []byte("eleven byte"), 0o644)
	mustSF(t, home, 0, "backup", tree, "--to", repoDir)
	out := mustSF(t, home, 0, "snapshots", "--repo", repoDir).stdout
	var rows []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, tree) {
			rows = append(rows, l)
		}
	}
	if len(rows) != 2 || !strings.Contains(rows[0], "3.0 MiB") || !strings.Contains(rows[1], "3.0 MiB") {
		t.Fatalf("want both folder snapshots at 3.0 MiB:\n%s", out)
	}
}
