package libvirt

import (
	"path/filepath"
	"testing"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/images/disk"
	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/images/repo"
)

const testBlock = 256 << 10

// granule is what an incremental reads for each write: QEMU's dirty bitmaps mark 64 KiB pieces
// (the qcow2 cluster size), and only those are read (disk.SourceOptions.PartialBlocks).
const granule = 64 << 10

func backupOpts(t *testing.T, job string) BackupOptions {
	return BackupOptions{JobID: job, Chain: "r1", Host: "kvm1", LockDir: filepath.Join(t.TempDir(), "locks"), ScratchDir: t.TempDir()}
}

func backupOK(t *testing.T, d *Driver, r *repo.Repository, vm appliance.VM, o BackupOptions) (repo.Stats, *repo.Snapshot) {
	t.Helper()
	res := d.BackupVM(testCtx(t), r, vm, o)
	if res.Err != nil || !res.Committed {
		t.Fatalf("backup %s: %v (committed %v)", o.JobID, res.Err, res.Committed)
	}
	sn, err := r.LoadSnapshot(testCtx(t), res.Snapshot)
	if err != nil {
		t.Fatal(err)
	}
	return res.Stats, sn
}

// checkDisk writes a snapshot's disk to a raw file and compares it with image.
func checkDisk(t *testing.T, r *repo.Repository, sn *repo.Snapshot, target, image string) {
	t.Helper()
	for _, dk := range sn.Disks {
		if dk.Name == target {
			out := filepath.Join(t.TempDir(), target+".raw")
			if err := disk.Restore(testCtx(t), r, dk, out, disk.RestoreOptions{}); err != nil {
				t.Fatal(err)
			}
			sameDisk(t, out, image)
			return
		}
	}
	t.Fatalf("snapshot has no disk %s", target)
}

// The first backup of a running domain reads only the allocated extents; after guest writes
// the next one reads only the blocks holding them (the dirty bitmap), keeps one checkpoint of
// its chain, and both snapshots restore to the disk as it was.
func TestBackupFullThenIncremental(t *testing.T) {
	d := needLibvirt(t)
	dir := t.TempDir()
	img := qemuImg(t, dir, "inc.qcow2", "qcow2", 64<<20, "write -P 0x11 0 1M", "write -P 0x22 8M 256k")
	vm := testDomain(t, d, "sf-inc", true, img)
	_, r := memblobs.LocalRepo(t, testBlock, repo.ChunkerParams{})

	st, full := backupOK(t, d, r, vm, backupOpts(t, "j1"))
	if st.BytesRead != 1<<20+256<<10 {
		t.Fatalf("full backup read %d bytes, want the %d allocated", st.BytesRead, 1<<20+256<<10)
	}
	if full.VM.Checkpoint != "snapferry-r1-j1" || full.VM.Hypervisor != "libvirt" || len(full.Warnings) != 0 {
		t.Fatalf("full snapshot: %+v warnings %v", full.VM, full.Warnings)
	}
	checkDisk(t, r, full, "vda", img)

	guestWrite(t, d, vm, "vda", 0xab, 1<<20, 64<<10)  // one block
	guestWrite(t, d, vm, "vda", 0xcd, 40<<20, 64<<10) // another, where the disk had a hole
	st, inc := backupOK(t, d, r, vm, backupOpts(t, "j2"))
	if st.BytesRead != 2*granule {
		t.Fatalf("incremental read %d bytes for 128 KiB written in two blocks, want %d", st.BytesRead, 2*granule)
	}
	if inc.VM.Checkpoint != "snapferry-r1-j2" || len(inc.Warnings) != 0 || inc.Parent == nil {
		t.Fatalf("incremental snapshot: %+v warnings %v", inc.VM, inc.Warnings)
	}
	checkDisk(t, r, inc, "vda", img)
	if cps := chainOf(t, d, vm, "r1"); len(cps) != 1 || cps[0] != "snapferry-r1-j2" {
		t.Fatalf("checkpoints of the chain after two backups: %v, want only the newest", cps)
	}
}

// chainOf lists the domain's checkpoints of a chain.
func chainOf(t *testing.T, d *Driver, vm appliance.VM, chain string) []string {
	t.Helper()
	dom, err := d.domain(vm.ID)
	if err != nil {
		t.Fatal(err)
	}
	cps, err := d.chainCheckpoints(dom, chain)
	if err != nil {
		t.Fatal(err)
	}
	return cps
}
