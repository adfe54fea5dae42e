package repo

import (
	"path/filepath"
	"testing"

	"github.com/snapferry/snapferry/images/disk/disktest"

	"github.com/snapferry/snapferry/images/store"
)

// TestBackupAndPruneOnESXiProfile runs a backup and a prune process the way the ESXi shell lets
// them run (scripts/esxi-profile.sh): no /proc, and the syscalls VMkernel may lack answer ENOSYS.
// epoll_pwait is left out of the set: the test binary is built stock, and the overlay that avoids
// it is proven by `make esxi-check` on the release binary.
func TestBackupAndPruneOnESXiProfile(t *testing.T) {
	script := disktest.ESXiProfile(t)

	dir := filepath.Join(t.TempDir(), "repo")
	testInit(t, dir)
	im := image{seed: 97, blocks: 30}
	j := helperJob{Repo: dir, Seed: im.seed, Blocks: im.blocks, Source: "esxi-vm", Tmp: t.TempDir(), Wrap: []string{script}}
	res := runBackup(t, j)
	if res.Start != "" {
		t.Fatalf("the helper saw /proc (start token %q): the profile did not apply", res.Start)
	}
	var rep PruneReport
	runHelperJSON(t, "prune", j, &rep)

	r := testOpen(t, dir, nil)
	id, err := ParseID(res.Snapshot)
	if err != nil {
		t.Fatal(err)
	}
	verifyImage(t, r, id, im)
	mustCheck(t, r, true)
	if n := countFiles(t, r.Backend(), store.KindLocks); n != 0 {
		t.Errorf("%d lock files left by the ESXi-profile processes", n)
	}
}
