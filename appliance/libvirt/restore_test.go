package libvirt

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/images/disk/memblobs"
	"github.com/snapferry/snapferry/images/repo"
)

func restoreOpts(t *testing.T, name, format string) RestoreOptions {
	return RestoreOptions{Name: name, DiskDir: filepath.Join(t.TempDir(), "disks"), Format: format, Register: true, LockDir: filepath.Join(t.TempDir(), "locks")}
}

// An incremental snapshot restores under a new name as qcow2 and as raw: the disks equal the
// source's (qemu-img compare), the domain is defined with a new UUID, new MACs and the new disk
// paths, and it starts.
func TestRestoreUnderNewName(t *testing.T) {
	d := needLibvirt(t)
	img := qemuImg(t, t.TempDir(), "src.qcow2", "qcow2", 32<<20, "write -P 0x11 0 1M")
	vm := testDomain(t, d, "sf-src", true, img)
	_, r := memblobs.LocalRepo(t, testBlock, repo.ChunkerParams{})
	backupOK(t, d, r, vm, backupOpts(t, "j1"))
	guestWrite(t, d, vm, "vda", 0x77, 3<<20, 64<<10)
	_, sn := backupOK(t, d, r, vm, backupOpts(t, "j2"))

	for _, format := range []string{"qcow2", "raw"} {
		name := "sf-copy-" + format
		o := restoreOpts(t, name, format)
		o.PowerOn = true
		res, err := d.Restore(testCtx(t), r, sn, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if dom, err := d.l.DomainLookupByName(name); err == nil {
				_ = d.l.DomainDestroy(dom)
				_ = d.l.DomainUndefineFlags(dom, 0)
			}
		})
		if !res.Defined || res.UUID == vm.ID || len(res.Disks) != 1 {
			t.Fatalf("%s: %+v", format, res)
		}
		sameDisk(t, res.Disks[0], img)
		out := run(t, "qemu-img", "info", "-U", res.Disks[0])
		if !strings.Contains(out, "file format: "+format) {
			t.Fatalf("restored disk is not %s:\n%s", format, out)
		}
		if st, err := d.PowerState(testCtx(t), res.UUID); err != nil || st != appliance.PoweredOn {
			t.Fatalf("restored domain state %v %v", st, err)
		}
		x, err := d.DomainXML(testCtx(t), name)
		if err != nil {
			t.Fatal(err)
		}
		dom, err := parseXML(x)
		if err != nil {
			t.Fatal(err)
		}
		ifc := dom.child("devices").child("interface")
		if mac := ifc.child("mac").attr("address"); mac == "52:54:00:aa:bb:cc" || mac == "" {
			t.Fatalf("restored domain has MAC %q, want a new one", mac)
		}
		if src := dom.child("devices").child("disk").child("source").attr("file"); src != res.Disks[0] {
			t.Fatalf("restored domain's disk is %s, want %s", src, res.Disks[0])
		}
	}
}

// A running domain is never replaced, even with --overwrite; a shut-off one only with it; and a
// refused restore leaves no file behind.
func TestRestoreNeverReplacesRunning(t *testing.T) {
	d := needLibvirt(t)
	img := qemuImg(t, t.TempDir(), "keep.qcow2", "qcow2", 16<<20, "write -P 0x11 0 1M")
	vm := testDomain(t, d, "sf-keep", true, img)
	_, r := memblobs.LocalRepo(t, testBlock, repo.ChunkerParams{})
	_, sn := backupOK(t, d, r, vm, backupOpts(t, "j1"))

	o := restoreOpts(t, "sf-keep", "qcow2")
	o.Overwrite = true
	if _, err := d.Restore(testCtx(t), r, sn, o); !errors.Is(err, appliance.ErrInvalidPowerState) {
		t.Fatalf("restore over the running domain: %v, want a refusal", err)
	}
	if ents, _ := os.ReadDir(o.DiskDir); len(ents) != 0 {
		t.Fatalf("refused restore left %d files", len(ents))
	}
	if err := d.PowerOff(testCtx(t), vm.ID); err != nil {
		t.Fatal(err)
	}
	o.Overwrite = false
	if _, err := d.Restore(testCtx(t), r, sn, o); !errors.Is(err, appliance.ErrAlreadyExists) {
		t.Fatalf("restore over the shut-off domain without --overwrite: %v, want a refusal", err)
	}
	o.Overwrite = true
	res, err := d.Restore(testCtx(t), r, sn, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.UUID != vm.ID {
		t.Fatalf("restored as itself with UUID %s, want the original %s", res.UUID, vm.ID)
	}
	sameDisk(t, res.Disks[0], img)
	cfg, err := d.Config(testCtx(t), vm.ID)
	if err != nil || cfg.Disks[0].FileName != res.Disks[0] {
		t.Fatalf("replaced domain's disk: %+v %v", cfg, err)
	}
}
