package libvirt

import (
	"testing"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/images/disk/memblobs"
	"github.com/snapferry/snapferry/images/repo"
)

// restore --instant: the domain runs at once on overlays backed by the repository over NBD;
// a guest write lands in the overlay, the rest is copied in the background, and at the end the
// overlay stands alone with the backup's data and the guest's write.
func TestInstantRestore(t *testing.T) {
	d := needLibvirt(t)
	img := qemuImg(t, t.TempDir(), "boot.qcow2", "qcow2", 32<<20, "write -P 0x11 0 1M", "write -P 0x22 10M 1M")
	vm := testDomain(t, d, "sf-boot", true, img)
	_, r := memblobs.LocalRepo(t, testBlock, repo.ChunkerParams{})
	_, sn := backupOK(t, d, r, vm, backupOpts(t, "j1"))

	o := restoreOpts(t, "sf-boot-now", "")
	in, err := d.InstantRestore(testCtx(t), r, sn, o)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	t.Cleanup(func() {
		if dom, err := d.l.DomainLookupByName("sf-boot-now"); err == nil {
			_ = d.l.DomainDestroy(dom)
			_ = d.l.DomainUndefineFlags(dom, 0)
		}
	})
	if st, err := d.PowerState(testCtx(t), in.Result.UUID); err != nil || st != appliance.PoweredOn {
		t.Fatalf("instant domain state %v %v", st, err)
	}
	restored := appliance.VM{ID: in.Result.UUID, Name: "sf-boot-now"}
	guestWrite(t, d, restored, "vda", 0x99, 20<<20, 64<<10)
	if err := in.Wait(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if in.BytesServed() < 2<<20 {
		t.Fatalf("the NBD exports served %d bytes, want at least the 2 MiB of data", in.BytesServed())
	}
	// Stop the domain so QEMU writes out its qcow2 metadata before the file is read.
	if err := d.PowerOff(testCtx(t), restored.ID); err != nil {
		t.Fatal(err)
	}
	overlay := in.Result.Disks[0]
	info := run(t, "qemu-img", "info", overlay)
	if contains(info, "backing file") {
		t.Fatalf("the overlay still has a backing file after the copy:\n%s", info)
	}
	run(t, "qemu-io", "-r", "-f", "qcow2", "-c", "read -P 0x11 0 1M", "-c", "read -P 0x22 10M 1M", "-c", "read -P 0x99 20M 64k", "-c", "read -P 0 21M 1M", overlay)
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
