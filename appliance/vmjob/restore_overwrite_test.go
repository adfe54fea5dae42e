package vmjob_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/appliance/esxi/sim"
	"github.com/snapferry/snapferry/appliance/vmjob"
	"github.com/snapferry/snapferry/images/repo"
)

// Restoring over a running VM needs PowerOff as well as Overwrite; a failed restore leaves the
// old VM as it was (registered, running); a successful one removes the old VM's files that the
// restored VM does not use (its second disk on another datastore) and lists them.
func TestRestoreOverRunningVM(t *testing.T) {
	e := newEnv(t)
	vm := e.addVM(sim.VMSpec{Name: "web", Datastore: "datastore1", PoweredOn: true, Tools: true,
		Disks: []sim.DiskSpec{
			{Size: 2 << 20, Data: []sim.Extent{{Offset: 0, Length: 64 << 10, Seed: 1}}},
			{Size: 1 << 20, Datastore: "ssd store (2)", Data: []sim.Extent{{Offset: 0, Length: 4096, Seed: 2}}, Device: "scsi0:1"},
		}})
	res := vmjob.BackupVM(e.ctx, e.drv, e.r, vm, e.opts("o1"))
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	sn, err := e.r.LoadSnapshot(e.ctx, res.Snapshot)
	if err != nil {
		t.Fatal(err)
	}
	oldCfg, err := e.drv.Config(e.ctx, vm.ID)
	if err != nil {
		t.Fatal(err)
	}
	second := oldCfg.Disks[1]
	if !strings.Contains(second.Base, "ssd store (2)") {
		t.Fatalf("fixture: second disk at %s", second.Base)
	}
	// Only disk 0 comes back: the restored VM no longer uses the second disk's files.
	one := *sn
	one.Disks = sn.Disks[:1]
	ropts := vmjob.RestoreOptions{Datastore: "datastore1", Name: "web", Register: true, Overwrite: true, LockDir: e.state}

	_, err = vmjob.Restore(e.ctx, e.drv, e.r, &one, ropts)
	if err == nil || !strings.Contains(err.Error(), "--power-off") {
		t.Fatalf("overwrite of a running VM without PowerOff: %v, want a refusal naming --power-off", err)
	}
	if st, err := e.drv.PowerState(e.ctx, vm.ID); err != nil || st != appliance.PoweredOn {
		t.Fatalf("refused restore changed the VM: %v %v", st, err)
	}

	broken := one
	broken.Disks = []repo.Disk{one.Disks[0]}
	broken.Disks[0].Map = []repo.ID{{1, 2, 3}}
	ropts.PowerOff = true
	if _, err := vmjob.Restore(e.ctx, e.drv, e.r, &broken, ropts); err == nil {
		t.Fatal("restore with a damaged block map succeeded")
	}
	if st, err := e.drv.PowerState(e.ctx, vm.ID); err != nil || st != appliance.PoweredOn {
		t.Fatalf("failed restore touched the old VM: %v %v", st, err)
	}
	if _, err := os.Stat(second.Extent); err != nil {
		t.Fatalf("failed restore removed the old VM's disk: %v", err)
	}

	rr, err := vmjob.Restore(e.ctx, e.drv, e.r, &one, ropts)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{second.Base, second.Extent} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("old VM's %s left behind: %v", p, err)
		}
		if !contains(rr.Removed, p) {
			t.Errorf("removed files %v do not list %s", rr.Removed, p)
		}
	}
	cfg, err := e.drv.Config(e.ctx, rr.ID)
	if err != nil || len(cfg.Disks) != 1 || filepath.Dir(cfg.Disks[0].Descriptor) != cfg.Dir {
		t.Fatalf("restored VM: %+v %v", cfg, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(cfg.Dir))
	for _, en := range entries {
		if strings.Contains(en.Name(), "snapferry") {
			t.Errorf("left on the datastore: %s", en.Name())
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
