package libvirt

import (
	"strings"
	"testing"

	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/images/repo"
)

// A user deletes snapferry's checkpoint: the next backup notices, reads the disk whole once and
// says why, and the one after is incremental again.
func TestBackupBitmapLost(t *testing.T) {
	d := needLibvirt(t)
	img := qemuImg(t, t.TempDir(), "lost.qcow2", "qcow2", 32<<20, "write -P 0x11 0 2M")
	vm := testDomain(t, d, "sf-lost", true, img)
	_, r := memblobs.LocalRepo(t, testBlock, repo.ChunkerParams{})
	backupOK(t, d, r, vm, backupOpts(t, "j1"))

	dom, _ := d.domain(vm.ID)
	cp, err := d.l.DomainCheckpointLookupByName(dom, "snapferry-r1-j1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.l.DomainCheckpointDelete(cp, 0); err != nil { // what `virsh checkpoint-delete` does
		t.Fatal(err)
	}
	guestWrite(t, d, vm, "vda", 0x5a, 4<<20, 64<<10)
	st, sn := backupOK(t, d, r, vm, backupOpts(t, "j2"))
	if st.BytesRead != 2<<20+testBlock {
		t.Fatalf("after the checkpoint was deleted the backup read %d bytes, want the whole allocated %d", st.BytesRead, 2<<20+testBlock)
	}
	if len(sn.Warnings) != 1 || !strings.Contains(sn.Warnings[0], "checkpoint snapferry-r1-j1 is gone") {
		t.Fatalf("warnings %q, want one saying the checkpoint is gone", sn.Warnings)
	}
	checkDisk(t, r, sn, "vda", img)

	guestWrite(t, d, vm, "vda", 0x6b, 5<<20, 4096)
	st, sn = backupOK(t, d, r, vm, backupOpts(t, "j3"))
	if st.BytesRead != granule || len(sn.Warnings) != 0 {
		t.Fatalf("the backup after recovery read %d bytes (warnings %q), want the one dirty granule", st.BytesRead, sn.Warnings)
	}
	checkDisk(t, r, sn, "vda", img)
}

// Two repositories back up one domain in turns: each keeps its own checkpoint, and each
// incremental reads every change since its own last backup, not since the other's.
func TestBackupTwoChains(t *testing.T) {
	d := needLibvirt(t)
	img := qemuImg(t, t.TempDir(), "two.qcow2", "qcow2", 32<<20, "write -P 0x11 0 1M")
	vm := testDomain(t, d, "sf-two", true, img)
	_, r1 := memblobs.LocalRepo(t, testBlock, repo.ChunkerParams{})
	_, r2 := memblobs.LocalRepo(t, testBlock, repo.ChunkerParams{})
	o1, o2 := backupOpts(t, "a1"), backupOpts(t, "b1")
	o2.Chain = "r2"
	backupOK(t, d, r1, vm, o1)
	guestWrite(t, d, vm, "vda", 0x21, 8<<20, 4096)
	backupOK(t, d, r2, vm, o2) // full for r2
	guestWrite(t, d, vm, "vda", 0x22, 12<<20, 4096)
	o1.JobID = "a2"
	st, sn := backupOK(t, d, r1, vm, o1)
	if st.BytesRead != 2*granule {
		t.Fatalf("r1's incremental read %d bytes, want both granules written since its last backup (%d)", st.BytesRead, 2*granule)
	}
	checkDisk(t, r1, sn, "vda", img)
	o2.JobID = "b2"
	st, sn = backupOK(t, d, r2, vm, o2)
	if st.BytesRead != granule {
		t.Fatalf("r2's incremental read %d bytes, want the one granule written since its last backup", st.BytesRead)
	}
	checkDisk(t, r2, sn, "vda", img)
	if a, b := chainOf(t, d, vm, "r1"), chainOf(t, d, vm, "r2"); len(a) != 1 || len(b) != 1 {
		t.Fatalf("checkpoints r1 %v r2 %v, want one each", a, b)
	}
}

// A shut-off domain is read from its files: a qcow2 overlay on a backing file, and a raw disk.
// A raw disk of a running domain keeps no bitmap: it is read whole, saying why.
func TestBackupShutOffAndRaw(t *testing.T) {
	d := needLibvirt(t)
	dir := t.TempDir()
	base := qemuImg(t, dir, "base.qcow2", "qcow2", 16<<20, "write -P 0x11 0 1M")
	top := dir + "/top.qcow2"
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", top)
	run(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x33 2M 64k", top)
	raw := qemuImg(t, dir, "data.raw", "raw", 8<<20, "write -P 0x44 1M 512k")
	vm := testDomain(t, d, "sf-off", false, top, raw)
	_, r := memblobs.LocalRepo(t, testBlock, repo.ChunkerParams{})
	st, sn := backupOK(t, d, r, vm, backupOpts(t, "o1"))
	if sn.VM.Mode != "cold" || len(sn.Disks) != 2 {
		t.Fatalf("snapshot %+v with %d disks", sn.VM, len(sn.Disks))
	}
	if want := int64(1<<20 + testBlock + 512<<10); st.BytesRead != want {
		t.Fatalf("shut-off backup read %d bytes, want the allocated %d", st.BytesRead, want)
	}
	checkDisk(t, r, sn, "vda", top)
	checkDisk(t, r, sn, "vdb", raw)

	if err := d.PowerOn(testCtx(t), vm.ID); err != nil {
		t.Fatal(err)
	}
	guestWrite(t, d, vm, "vdb", 0x55, 0, 4096)
	_, sn = backupOK(t, d, r, vm, backupOpts(t, "o2"))
	found := false
	for _, w := range sn.Warnings {
		found = found || strings.Contains(w, "disk vdb read whole: disk vdb is raw")
	}
	if !found {
		t.Fatalf("warnings %q do not say the raw disk was read whole", sn.Warnings)
	}
	checkDisk(t, r, sn, "vda", top)
	checkDisk(t, r, sn, "vdb", raw)
}

// An excluded disk is left out of the snapshot, the backup job and the checkpoint; --quiesce
// without a guest agent goes on and says it did not quiesce.
func TestBackupExcludeAndQuiesce(t *testing.T) {
	d := needLibvirt(t)
	dir := t.TempDir()
	a := qemuImg(t, dir, "a.qcow2", "qcow2", 8<<20, "write -P 0x11 0 1M")
	b := qemuImg(t, dir, "b.qcow2", "qcow2", 8<<20, "write -P 0x22 0 1M")
	vm := testDomain(t, d, "sf-excl", true, a, b)
	_, r := memblobs.LocalRepo(t, testBlock, repo.ChunkerParams{})
	o := backupOpts(t, "q1")
	o.ExcludeDisks, o.Quiesce = []string{"vdb"}, true
	st, sn := backupOK(t, d, r, vm, o)
	if len(sn.Disks) != 1 || sn.Disks[0].Name != "vda" || st.BytesRead != 1<<20 {
		t.Fatalf("disks %v read %d, want only vda's 1 MiB", sn.Disks, st.BytesRead)
	}
	if len(sn.Warnings) != 1 || !strings.Contains(sn.Warnings[0], "not quiesced") {
		t.Fatalf("warnings %q, want one saying the guest was not quiesced", sn.Warnings)
	}
	dom, _ := d.domain(vm.ID)
	disks, ok, err := d.checkpointDisks(dom, sn.VM.Checkpoint)
	if err != nil || !ok {
		t.Fatalf("checkpoint %s: %v %v", sn.VM.Checkpoint, ok, err)
	}
	if _, has := disks["vdb"]; has || len(disks) != 1 {
		t.Fatalf("checkpoint bitmaps %v, want vda only", disks)
	}
}

// A domain shut down after a backup: the next backup reads its qcow2 file through qemu-nbd with
// the checkpoint's persistent bitmap and reads only what the guest wrote before shutting down;
// the backup after it, running again, is incremental from the same checkpoint.
func TestBackupShutOffIncremental(t *testing.T) {
	d := needLibvirt(t)
	img := qemuImg(t, t.TempDir(), "offinc.qcow2", "qcow2", 32<<20, "write -P 0x11 0 2M")
	vm := testDomain(t, d, "sf-offinc", true, img)
	_, r := memblobs.LocalRepo(t, testBlock, repo.ChunkerParams{})
	backupOK(t, d, r, vm, backupOpts(t, "k1"))
	guestWrite(t, d, vm, "vda", 0x3c, 6<<20, 64<<10)
	if err := d.Shutdown(testCtx(t), vm.ID); err != nil {
		t.Fatal(err)
	}
	// No guest OS answers ACPI: stop it hard; QEMU still writes the bitmaps out on exit.
	if err := d.PowerOff(testCtx(t), vm.ID); err != nil {
		t.Fatal(err)
	}
	st, sn := backupOK(t, d, r, vm, backupOpts(t, "k2"))
	if sn.VM.Mode != "cold" || sn.VM.Checkpoint != "snapferry-r1-k1" || len(sn.Warnings) != 0 {
		t.Fatalf("offline snapshot %+v warnings %q", sn.VM, sn.Warnings)
	}
	if st.BytesRead != granule {
		t.Fatalf("offline incremental read %d bytes, want the one granule written", st.BytesRead)
	}
	checkDisk(t, r, sn, "vda", img)

	if err := d.PowerOn(testCtx(t), vm.ID); err != nil {
		t.Fatal(err)
	}
	guestWrite(t, d, vm, "vda", 0x4d, 9<<20, 4096)
	st, sn = backupOK(t, d, r, vm, backupOpts(t, "k3"))
	// Changes since k1: the block written before the shutdown and the new one.
	if st.BytesRead != 2*granule || len(sn.Warnings) != 0 {
		t.Fatalf("running incremental after the offline one read %d bytes (warnings %q)", st.BytesRead, sn.Warnings)
	}
	checkDisk(t, r, sn, "vda", img)
}

// Ending a backup job that is already gone is no error, and after a backup the domain lists no
// backup job: the next run (another chain's, moments later) must not take ours for one a killed
// run left (CI once saw it find the job still being torn down, whose abort then failed with "no
// job is active on the domain").
func TestBackupJobGoneWhenBackupReturns(t *testing.T) {
	d := needLibvirt(t)
	img := qemuImg(t, t.TempDir(), "gone.qcow2", "qcow2", 16<<20, "write -P 0x11 0 1M")
	vm := testDomain(t, d, "sf-gone", true, img)
	dom, err := d.domain(vm.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.abortBackupJob(dom); err != nil {
		t.Fatalf("ending a backup job of a domain that has none: %v", err)
	}
	_, r := memblobs.LocalRepo(t, testBlock, repo.ChunkerParams{})
	for _, job := range []string{"g1", "g2"} {
		backupOK(t, d, r, vm, backupOpts(t, job))
		if x, err := d.l.DomainBackupGetXMLDesc(dom, 0); err == nil {
			t.Fatalf("after backup %s the domain still lists a backup job:\n%s", job, x)
		}
	}
}
