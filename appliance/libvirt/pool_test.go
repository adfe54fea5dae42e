package libvirt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/images/repo"
)

// A restore into a libvirt dir pool creates the disks as volumes of the pool (qcow2 and raw)
// and defines the domain on the paths the pool gives them. A second restore keeps the volumes
// and is refused without --overwrite, and replaces them with it; no temporary volume is left in
// the pool; pools that do not exist or are not active are named.
func TestRestoreIntoStoragePool(t *testing.T) {
	d := needLibvirt(t)
	ctx := testCtx(t)
	img := qemuImg(t, t.TempDir(), "pool-src.qcow2", "qcow2", 16<<20, "write -P 0x11 0 1M", "write -P 0x22 5M 64k")
	vm := testDomain(t, d, "sf-poolsrc", false, img)
	_, r := memblobs.LocalRepo(t, testBlock, repo.ChunkerParams{})
	_, sn := backupOK(t, d, r, vm, backupOpts(t, "j1"))

	pdir := t.TempDir()
	pool, err := d.l.StoragePoolCreateXML(fmt.Sprintf(`<pool type='dir'><name>sf-pool</name><target><path>%s</path></target></pool>`, pdir), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.l.StoragePoolDestroy(pool) })

	for _, format := range []string{"qcow2", "raw"} {
		name := "sf-pooled-" + format
		o := RestoreOptions{Name: name, Pool: "sf-pool", Format: format, Register: true, LockDir: filepath.Join(t.TempDir(), "locks")}
		res, err := d.Restore(ctx, r, sn, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if dom, err := d.l.DomainLookupByName(name); err == nil {
				_ = d.l.DomainUndefineFlags(dom, 0)
			}
		})
		volName := name + "-vda." + format
		vol, err := d.l.StorageVolLookupByName(pool, volName)
		if err != nil {
			t.Fatalf("volume %s not in the pool: %v", volName, err)
		}
		path, err := d.l.StorageVolGetPath(vol)
		if err != nil || len(res.Disks) != 1 || res.Disks[0] != path || filepath.Dir(path) != pdir {
			t.Fatalf("volume path %s (%v), restore says %v", path, err, res.Disks)
		}
		sameDisk(t, path, img)
		if out := run(t, "qemu-img", "info", "-U", path); !strings.Contains(out, "file format: "+format) {
			t.Fatalf("volume is not %s:\n%s", format, out)
		}
		x, err := d.DomainXML(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		dom, err := parseXML(x)
		if err != nil {
			t.Fatal(err)
		}
		if src := dom.child("devices").child("disk").child("source").attr("file"); src != path {
			t.Fatalf("domain's disk is %s, want the volume %s", src, path)
		}

		// The domain is gone, the volume is not: without --overwrite it is kept.
		if dom, err := d.l.DomainLookupByName(name); err == nil {
			_ = d.l.DomainUndefineFlags(dom, 0)
		}
		if err := os.WriteFile(path, []byte("changed since"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Restore(ctx, r, sn, o); !errors.Is(err, appliance.ErrAlreadyExists) || !strings.Contains(err.Error(), "volume "+volName) {
			t.Fatalf("restore over an existing volume: %v, want a refusal naming it", err)
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != "changed since" {
			t.Fatalf("refused restore touched the volume: %v", err)
		}
		o.Overwrite = true
		if res, err = d.Restore(ctx, r, sn, o); err != nil {
			t.Fatal(err)
		}
		sameDisk(t, res.Disks[0], img)
	}
	ents, err := os.ReadDir(pdir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if want := []string{"sf-pooled-qcow2-vda.qcow2", "sf-pooled-raw-vda.raw"}; !slices.Equal(names, want) {
		t.Fatalf("pool folder holds %v, want %v", names, want)
	}

	o := RestoreOptions{Name: "sf-nopool", Pool: "sf-no-such-pool", Register: true, LockDir: filepath.Join(t.TempDir(), "locks")}
	if _, err := d.Restore(ctx, r, sn, o); !errors.Is(err, appliance.ErrNotFound) {
		t.Fatalf("restore into a pool that does not exist: %v", err)
	}
	o.Register = false
	if _, err := d.Restore(ctx, r, sn, o); err == nil || !strings.Contains(err.Error(), "--register") {
		t.Fatalf("restore into a pool with nothing to use the volumes: %v", err)
	}
}
