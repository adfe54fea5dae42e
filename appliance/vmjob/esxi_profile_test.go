package vmjob_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/images/disk/disktest"

	"github.com/snapferry/snapferry/appliance/esxi/sim"
	"github.com/snapferry/snapferry/images/repo"
)

// A hot backup in a process that runs the way the ESXi shell lets it (scripts/esxi-profile.sh):
// no /proc, and the syscalls VMkernel may lack (pidfd_*, clone3, close_range...) fail with
// ENOSYS, for the job and for every vim-cmd it starts. epoll_pwait stays out of the set: this
// test binary is a stock build; the overlay that avoids it is proven on the release binary.
func TestHotBackupOnESXiProfile(t *testing.T) {
	script := disktest.ESXiProfile(t)

	e := newEnv(t)
	vm := e.addVM(sim.VMSpec{Name: "esx vm", Datastore: "datastore1", PoweredOn: true,
		Disks: []sim.DiskSpec{{Size: 2 << 20, Data: []sim.Extent{{Offset: 0, Length: 1 << 20, Seed: 6}}}}})
	e.r.Close()
	cmd := exec.Command(script, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=plain", "SIM_ROOT="+e.h.Root, "STATE="+e.state, "REPO="+e.repo,
		"VMID="+vm.ID, "SIM_BIN="+simBin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("backup under the ESXi profile: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "no /proc here") || !strings.Contains(string(out), "committed=true err=<nil>") {
		t.Fatalf("helper output: %s", out)
	}
	if left := e.ourSnapshots(vm.ID); len(left) != 0 {
		t.Errorf("our snapshots left: %v", left)
	}
	r := openRepo(t, e.ctx, e.repo, e.state, false)
	snaps, err := r.ListSnapshots(e.ctx, repo.SnapshotFilter{})
	if err != nil || len(snaps) != 1 {
		t.Fatalf("snapshots: %d, %v", len(snaps), err)
	}
	e.r = r
	equalBytes(t, "disk backed up under the profile", e.restoredDisk(snaps[0].ID, "vmdk0"), e.guestView(vm.ID, "vmdk0"))
}
