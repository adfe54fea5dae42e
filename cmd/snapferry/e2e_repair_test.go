package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/cron/exitcode"
	"github.com/snapferry/snapferry/images/disk/disktest"
)

// TestRepairCLI: a flipped byte in a pack; check --read-data fails and marks the damage; repair
// --dry-run changes nothing; repair names the damaged pack and snapshot; the next backup of the
// same image stores the lost block again, after which check --read-data is clean and the old
// snapshot restores byte for byte.
func TestRepairCLI(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "state")
	repoDir := filepath.Join(dir, "repo")
	img := filepath.Join(dir, "disk.img")
	sparseImage(t, img, 16<<20, 1, 3, 5)
	mustSF(t, home, 0, "init", repoDir)
	mustSF(t, home, 0, "backup", img, "--to", repoDir)
	// The image's data is the largest pack (a backup also stores a small host-state snapshot).
	packs := []string{largestPack(t, repoDir)}
	b, _ := os.ReadFile(packs[0])
	b[1000] ^= 0x20
	os.Chmod(packs[0], 0o644)
	if err := os.WriteFile(packs[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	chk := mustSF(t, home, exitcode.Failed, "check", "--repo", repoDir, "--read-data")
	if !strings.Contains(chk.stdout, "marked 1 damaged blob") {
		t.Fatalf("check --read-data:\n%s", chk.stdout)
	}
	before := disktest.TreeState(t, repoDir)
	dry := mustSF(t, home, 0, "repair", "--repo", repoDir, "--dry-run")
	if after := disktest.TreeState(t, repoDir); len(after) != len(before) {
		t.Fatalf("repair --dry-run changed the repository:\n%s", dry.stdout)
	}
	rep := mustSF(t, home, 0, "repair", "--repo", repoDir)
	if !strings.Contains(rep.stdout, "damaged pack: "+filepath.Base(packs[0])) || !strings.Contains(rep.stdout, "damaged snapshot:") ||
		!strings.Contains(rep.stdout, "1 blobs lost") {
		t.Fatalf("repair:\n%s", rep.stdout)
	}
	if _, err := os.Stat(packs[0]); err == nil {
		t.Fatal("the damaged pack is still there")
	}
	mustSF(t, home, 0, "backup", img, "--to", repoDir)
	mustSF(t, home, 0, "check", "--repo", repoDir, "--read-data")
	snaps := imageSnapshots(t, repoDir, "") // host-state snapshots hold no disk.img
	for _, id := range snaps {
		out := filepath.Join(dir, "out-"+id[:8])
		mustSF(t, home, 0, "restore", id, "--from", repoDir, "--target", out)
		if disktest.FileSum(t, filepath.Join(out, "disk.img")) != disktest.FileSum(t, img) {
			t.Fatalf("snapshot %s restores other bytes", id[:8])
		}
	}
}
