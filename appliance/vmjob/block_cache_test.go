package vmjob_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/appliance/esxi/sim"
	"github.com/snapferry/snapferry/appliance/vmjob"
	"github.com/snapferry/snapferry/images/disk"
)

// The fingerprint cache of a VM disk is keyed by the VM and the disk's device, not by the path
// read: with a snapshot of the user's, every run reads a new temporary chain clone, and the
// second run must still find the first run's cache.
func TestBackupUsesBlockCacheAcrossChainClones(t *testing.T) {
	e := newEnv(t)
	ext := []sim.Extent{{Offset: 1 << 20, Length: 1 << 20, Seed: 7}} // 4 blocks of 256 KiB
	vm := e.addVM(sim.VMSpec{Name: "cache vm", Datastore: "datastore1", PoweredOn: true,
		Disks: []sim.DiskSpec{{Size: 4 << 20, Data: ext}, {Size: 2 << 20, Data: ext[:0]}}})
	if _, err := e.drv.CreateSnapshot(e.ctx, vm.ID, "the user's", "", appliance.SnapshotOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.h.GuestWrite(vm.ID, "vmdk1", 0, []byte("second disk"), 0); err != nil {
		t.Fatal(err)
	}
	o := e.opts("c1")
	o.CacheDir = disk.CacheDir(e.state)
	res := vmjob.BackupVM(e.ctx, e.drv, e.r, vm, o)
	if res.Err != nil || !res.Committed || res.Stats.BlocksCached != 0 {
		t.Fatalf("first backup: %+v", res)
	}
	caches, _ := os.ReadDir(o.CacheDir)
	if len(caches) != 2 {
		t.Fatalf("%d cache files, want one per disk", len(caches))
	}

	// One block of vmdk0 changes; the other three and vmdk1's block do not.
	if err := e.h.GuestWrite(vm.ID, "vmdk0", (1<<20)+10, []byte("changed"), 0); err != nil {
		t.Fatal(err)
	}
	want0, want1 := e.guestView(vm.ID, "vmdk0"), e.guestView(vm.ID, "vmdk1")
	o.JobID = "c2"
	res = vmjob.BackupVM(e.ctx, e.drv, e.r, vm, o)
	if res.Err != nil || !res.Committed || res.Stats.BlocksCached != 4 {
		t.Fatalf("second backup: %d blocks cached, want 4: %+v", res.Stats.BlocksCached, res)
	}
	equalBytes(t, "vmdk0 restored", e.restoredDisk(res.Snapshot, "vmdk0"), want0)
	equalBytes(t, "vmdk1 restored", e.restoredDisk(res.Snapshot, "vmdk1"), want1)

	// --rehash: nothing cached.
	o.JobID, o.Rehash = "c3", true
	res = vmjob.BackupVM(e.ctx, e.drv, e.r, vm, o)
	if res.Err != nil || !res.Committed || res.Stats.BlocksCached != 0 {
		t.Fatalf("rehash backup: %+v", res)
	}
	if tmp, _ := filepath.Glob(filepath.Join(o.CacheDir, "*.tmp-*")); len(tmp) != 0 {
		t.Fatalf("temp files left: %v", tmp)
	}
}
