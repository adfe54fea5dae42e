package esxi_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/appliance/esxi"
	"github.com/snapferry/snapferry/appliance/esxi/sim"
	"github.com/snapferry/snapferry/appliance/esxi/simtest"
	"github.com/snapferry/snapferry/cron/testkit"
)

// simBin holds the esxisim build shared by this test binary's tests (set once in TestMain).
var simBin string

func TestMain(m *testing.M) {
	os.Exit(simtest.Main(m, func(dir string) { simBin = dir }))
}

// testHost is a simulated host with two datastores whose names have spaces, and a driver on it.
func testHost(t *testing.T) (*sim.Host, *esxi.Driver) {
	t.Helper()
	h, err := sim.NewHost(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"datastore1", "ssd store (2)"} {
		if err := h.AddDatastore(d, sim.DatastoreOptions{Capacity: 8 << 30}); err != nil {
			t.Fatal(err)
		}
	}
	drv, err := esxi.New(simtest.Config(simBin, h.Root))
	if err != nil {
		t.Fatal(err)
	}
	return h, drv
}

func addVM(t *testing.T, h *sim.Host, spec sim.VMSpec) string {
	t.Helper()
	id, err := h.AddVM(spec)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestDriverInventoryAndConfig(t *testing.T) {
	h, drv := testHost(t)
	ctx := context.Background()
	id := addVM(t, h, sim.VMSpec{
		Name: "web [prod] 01", Datastore: "datastore1", PoweredOn: true, Annotation: "Front end.\nOwner: ops",
		Disks: []sim.DiskSpec{
			{Size: 4 << 20},
			{Size: 2 << 20, Datastore: "ssd store (2)", Device: "sata0:0"},
			{Size: 1 << 20, Mode: "independent-persistent", Device: "nvme0:0"},
			{Size: 1 << 30, RDM: appliance.PhysicalRDM},
			{Size: 1 << 30, RDM: appliance.VirtualRDM, Device: "ide0:0"},
		},
	})
	addVM(t, h, sim.VMSpec{Name: "db01", Datastore: "ssd store (2)", Disks: []sim.DiskSpec{{Size: 1 << 20}}})

	vms, err := drv.VMs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(vms) != 2 || vms[0].Name != "web [prod] 01" || vms[0].Annotation != "Front end.\nOwner: ops" || vms[1].Datastore != "ssd store (2)" {
		t.Fatalf("VMs = %+v", vms)
	}
	cfg, err := drv.Config(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		name, device, ds string
		size             int64
		indep            bool
		rdm              appliance.RDMKind
	}
	wants := []want{
		{"vmdk0", "scsi0:0", "datastore1", 4 << 20, false, appliance.NotRDM},
		{"vmdk1", "sata0:0", "ssd store (2)", 2 << 20, false, appliance.NotRDM},
		{"vmdk2", "nvme0:0", "datastore1", 1 << 20, true, appliance.NotRDM},
		{"vmdk3", "scsi0:3", "datastore1", 1 << 30, false, appliance.PhysicalRDM},
		{"vmdk4", "ide0:0", "datastore1", 1 << 30, false, appliance.VirtualRDM},
	}
	if len(cfg.Disks) != len(wants) {
		t.Fatalf("%d disks: %+v", len(cfg.Disks), cfg.Disks)
	}
	for i, w := range wants {
		d := cfg.Disks[i]
		if d.Name != w.name || d.Device != w.device || d.Datastore != w.ds || d.Size != w.size || d.Independent != w.indep || d.RDM != w.rdm {
			t.Errorf("disk %d = %+v, want %+v", i, d, w)
		}
		if w.rdm == appliance.NotRDM {
			if st, err := os.Stat(d.Extent); err != nil || st.Size() != w.size {
				t.Errorf("disk %d extent %s: %v", i, d.Extent, err)
			}
		}
	}
	if len(cfg.Files) != 4 {
		t.Errorf("config files = %q, want vmx, nvram, vmxf, vmsd", cfg.Files)
	}

	// While snapshotted, the disk runs on a delta whose chain leads to the same base.
	snap, err := drv.CreateSnapshot(ctx, id, "snapferry-t1", "test", appliance.SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg2, err := drv.Config(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		d0, d1 := cfg.Disks[i], cfg2.Disks[i]
		if len(d1.Chain) != 2 || d1.Base != d1.Chain[1] || !strings.HasSuffix(d1.Descriptor, "-000001.vmdk") ||
			d1.Extent != d0.Extent && !sameFile(d1.Extent, d0.Extent) || d1.Size != d0.Size {
			t.Errorf("disk %d while snapshotted: %+v", i, d1)
		}
	}
	if cfg2.Disks[2].Descriptor != cfg.Disks[2].Descriptor || cfg2.Disks[3].Descriptor != cfg.Disks[3].Descriptor {
		t.Error("independent disk or physical RDM got a delta")
	}
	if err := drv.RemoveSnapshot(ctx, id, snap); err != nil {
		t.Fatal(err)
	}
	if snaps, err := drv.Snapshots(ctx, id); err != nil || len(snaps) != 0 {
		t.Fatalf("after removal: %+v, %v", snaps, err)
	}
	if _, err := drv.Config(ctx, "999"); !errors.Is(err, appliance.ErrNotFound) {
		t.Errorf("unknown VM: %v", err)
	}
}

func sameFile(a, b string) bool {
	ia, err1 := os.Stat(a)
	ib, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(ia, ib)
}

func TestDriverPower(t *testing.T) {
	h, drv := testHost(t)
	ctx := context.Background()
	id := addVM(t, h, sim.VMSpec{Name: "vm", Datastore: "datastore1", Tools: true, Disks: []sim.DiskSpec{{Size: 1 << 20}}})
	if err := drv.Shutdown(ctx, id); !errors.Is(err, appliance.ErrInvalidPowerState) {
		t.Errorf("shutdown of a VM that is off: %v", err)
	}
	if err := drv.PowerOn(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := drv.PowerOn(ctx, id); !errors.Is(err, appliance.ErrInvalidPowerState) {
		t.Errorf("power on twice (6.5 says \"Power on failed\"): %v", err)
	}
	if st, err := drv.PowerState(ctx, id); err != nil || st != appliance.PoweredOn {
		t.Fatalf("state %v, %v", st, err)
	}
	if err := drv.Shutdown(ctx, id); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, "the guest to shut down", func() bool {
		st, err := drv.PowerState(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return st == appliance.PoweredOff
	})
	if err := drv.PowerOn(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := h.SetFaults(sim.Faults{ToolsNotRunning: true}); err != nil {
		t.Fatal(err)
	}
	err := drv.Shutdown(ctx, id)
	if !errors.Is(err, appliance.ErrToolsNotRunning) || !esxi.IsFault(err, "vim.fault.ToolsUnavailable") {
		t.Errorf("shutdown without Tools: %v", err)
	}
	if err := drv.PowerOff(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := drv.PowerOff(ctx, id); !errors.Is(err, appliance.ErrInvalidPowerState) {
		t.Errorf("power off twice: %v", err)
	}
}

func TestDriverSnapshotsSlowFailingAndOldSyntax(t *testing.T) {
	h, drv := testHost(t)
	ctx := context.Background()
	id := addVM(t, h, sim.VMSpec{Name: "vm", Datastore: "datastore1", PoweredOn: true, Tools: true, Disks: []sim.DiskSpec{{Size: 1 << 20}}})

	if err := h.SetFaults(sim.Faults{SlowTasks: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	user, err := drv.CreateSnapshot(ctx, id, "user snap", "two\nlines", appliance.SnapshotOptions{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 250*time.Millisecond || user.Description != "two\nlines" || user.State != "powered on" {
		t.Errorf("slow snapshot returned after %s as %+v", time.Since(start), user)
	}
	if err := h.SetFaults(sim.Faults{SnapshotCreateFail: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := drv.CreateSnapshot(ctx, id, "snapferry-x", "", appliance.SnapshotOptions{}); err == nil || !strings.Contains(err.Error(), "GenericVmConfigFault") {
		t.Errorf("failing create: %v", err)
	}
	if err := h.SetFaults(sim.Faults{DatastoreFull: []string{"datastore1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := drv.CreateSnapshot(ctx, id, "snapferry-x", "", appliance.SnapshotOptions{}); !errors.Is(err, appliance.ErrNoSpace) {
		t.Errorf("create on a full datastore: %v", err)
	}
	if err := h.SetFaults(sim.Faults{ToolsNotRunning: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := drv.CreateSnapshot(ctx, id, "snapferry-q", "", appliance.SnapshotOptions{Quiesce: true}); !errors.Is(err, appliance.ErrToolsNotRunning) {
		t.Errorf("quiesced create without Tools: %v", err)
	}
	if err := h.SetFaults(sim.Faults{SnapshotRemoveFail: -1}); err != nil {
		t.Fatal(err)
	}
	if err := drv.RemoveSnapshot(ctx, id, user); err == nil {
		t.Error("failing remove: want an error")
	}
	if err := h.SetFaults(sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	snaps, err := drv.Snapshots(ctx, id)
	if err != nil || len(snaps) != 1 {
		t.Fatalf("snapshots after faults: %+v, %v", snaps, err)
	}

	// An older host: snapshot.remove by level and index; registervm silent.
	h2, drv2 := testHost(t)
	if err := h2.Configure("5.5.0", "1331820", true, true); err != nil {
		t.Fatal(err)
	}
	id2 := addVM(t, h2, sim.VMSpec{Name: "old", Datastore: "datastore1", Disks: []sim.DiskSpec{{Size: 1 << 20}}})
	a, err := drv2.CreateSnapshot(ctx, id2, "a", "", appliance.SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := drv2.CreateSnapshot(ctx, id2, "b", "", appliance.SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := drv2.RemoveSnapshot(ctx, id2, a); err != nil {
		t.Fatal(err)
	}
	left, err := drv2.Snapshots(ctx, id2)
	if err != nil || len(left) != 1 || left[0].ID != b.ID || left[0].Level != 0 {
		t.Fatalf("after removing a on the old host: %+v, %v", left, err)
	}
	if err := drv2.RemoveSnapshot(ctx, id2, b); err != nil {
		t.Fatal(err)
	}
	vm := "/vmfs/volumes/datastore1/old/old.vmx"
	if err := drv2.Unregister(ctx, id2); err != nil {
		t.Fatal(err)
	}
	newID, err := drv2.Register(ctx, drv2.LocalPath(vm), "")
	if err != nil || newID == "" || newID == id2 {
		t.Errorf("register on a silent host: %q, %v", newID, err)
	}
}

func TestDriverRegisterCloneDatastores(t *testing.T) {
	h, drv := testHost(t)
	ctx := context.Background()
	id := addVM(t, h, sim.VMSpec{Name: "src vm", Datastore: "datastore1", Disks: []sim.DiskSpec{{Size: 2 << 20, Data: []sim.Extent{{Offset: 0, Length: 64 << 10, Seed: 4}}}}})
	cfg, err := drv.Config(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	dss, err := drv.Datastores(ctx)
	if err != nil || len(dss) != 2 || dss[1].Name != "ssd store (2)" || dss[1].Free <= 0 {
		t.Fatalf("datastores: %+v, %v", dss, err)
	}
	if _, err := os.Stat(dss[1].LocalPath); err != nil {
		t.Fatalf("datastore local path: %v", err)
	}
	dstDir := filepath.Join(drv.VMFSRoot(), "ssd store (2)", "copy")
	if err := os.MkdirAll(dstDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var seen []int
	dst := filepath.Join(dstDir, "copy.vmdk")
	if err := drv.CloneDiskProgress(ctx, cfg.Disks[0].Descriptor, dst, func(p int) { seen = append(seen, p) }); err != nil {
		t.Fatal(err)
	}
	if len(seen) == 0 || seen[len(seen)-1] != 100 {
		t.Errorf("progress seen: %v", seen)
	}
	a, _ := os.ReadFile(cfg.Disks[0].Extent)
	b, _ := os.ReadFile(filepath.Join(dstDir, "copy-flat.vmdk"))
	if string(a) != string(b) {
		t.Error("clone differs from the source")
	}
	if err := h.SetFaults(sim.Faults{DatastoreFull: []string{"ssd store (2)"}}); err != nil {
		t.Fatal(err)
	}
	if err := drv.CloneDisk(ctx, cfg.Disks[0].Descriptor, filepath.Join(dstDir, "c2.vmdk")); !errors.Is(err, appliance.ErrNoSpace) {
		t.Errorf("clone to a full datastore: %v", err)
	}
	if _, err := drv.Register(ctx, cfg.LocalVMX, ""); !errors.Is(err, appliance.ErrAlreadyExists) {
		t.Errorf("registering a registered VM: %v", err)
	}
	if err := drv.Unregister(ctx, "4711"); !errors.Is(err, appliance.ErrNotFound) {
		t.Errorf("unregister of an unknown VM: %v", err)
	}
	if v, err := drv.Version(ctx); err != nil || v.Version != "6.5.0" {
		t.Errorf("version %+v, %v", v, err)
	}
	if _, err := esxi.New(esxi.Config{VimCmd: "/nonexistent/vim-cmd"}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing vim-cmd: %v", err)
	}
}

// A host whose vim-cmd has no help command: the remove syntax comes from the usage that
// snapshot.remove prints without arguments (on stderr here).
func TestDriverRemoveSyntaxWithoutHelp(t *testing.T) {
	h, _ := testHost(t)
	if err := h.Configure("5.5.0", "1331820", true, false); err != nil {
		t.Fatal(err)
	}
	wrapper := filepath.Join(t.TempDir(), "vim-cmd")
	script := "#!/bin/sh\nif [ \"$1\" = help ]; then echo \"Unknown command: 'help'\" >&2; exit 1; fi\nexec " +
		filepath.Join(simBin, "esxisim") + " vim-cmd \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := simtest.Config(simBin, h.Root)
	cfg.VimCmd = wrapper
	drv, err := esxi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id := addVM(t, h, sim.VMSpec{Name: "old", Datastore: "datastore1", Disks: []sim.DiskSpec{{Size: 1 << 20}}})
	a, err := drv.CreateSnapshot(ctx, id, "a", "", appliance.SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := drv.CreateSnapshot(ctx, id, "b", "", appliance.SnapshotOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := drv.RemoveSnapshot(ctx, id, a); err != nil {
		t.Fatal(err)
	}
	if snaps, err := drv.Snapshots(ctx, id); err != nil || len(snaps) != 1 || snaps[0].Name != "b" {
		t.Fatalf("after removing a: %+v, %v", snaps, err)
	}
}
