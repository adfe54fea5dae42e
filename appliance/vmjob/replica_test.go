package vmjob_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/appliance/esxi"
	"github.com/snapferry/snapferry/appliance/esxi/sim"
	"github.com/snapferry/snapferry/appliance/vmjob"
	"github.com/snapferry/snapferry/images/vmdk"
	"github.com/snapferry/snapferry/transfer/replica"
)

// copyOut is a push that copies the files into far/set while the VM is frozen, as the far side
// would hold them after a commit. The transfer itself is tested in transfer/replica and end to
// end in cmd/snapferry; this checks what vmjob hands over and when.
func copyOut(t *testing.T, far string, during func()) vmjob.PushFunc {
	return func(ctx context.Context, set string, files []replica.File) (replica.Stats, error) {
		if during != nil {
			during()
		}
		dir := filepath.Join(far, set)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return replica.Stats{}, err
		}
		for _, f := range files {
			in, err := os.Open(f.Source)
			if err != nil {
				return replica.Stats{}, err
			}
			out, err := os.Create(filepath.Join(dir, f.Name))
			if err != nil {
				in.Close()
				return replica.Stats{}, err
			}
			_, err = io.Copy(out, in)
			in.Close()
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return replica.Stats{}, err
			}
		}
		return replica.Stats{Files: len(files)}, nil
	}
}

// A hot replica of a VM with two disks of the same file name on two datastores and an
// independent disk: the pushed flat extents hold the disks at snapshot time although the guest
// writes during the push, the far .vmx names descriptors that exist beside it and name those
// extents, the independent disk is left out with a warning and disabled, nothing stays behind.
func TestReplicaLayoutHot(t *testing.T) {
	e := newEnv(t)
	const size = 4 << 20
	ext0 := []sim.Extent{{Offset: 0, Length: 1 << 20, Seed: 11}}
	ext1 := []sim.Extent{{Offset: 2 << 20, Length: 512 << 10, Seed: 12}}
	vm := e.addVM(sim.VMSpec{Name: "app [x] 1", Datastore: "datastore1", PoweredOn: true, Tools: true, Disks: []sim.DiskSpec{
		{Size: size, FileName: "app.vmdk", Data: ext0},
		{Size: size, FileName: "app.vmdk", Datastore: "ssd store (2)", Data: ext1},
		{Size: 1 << 20, Mode: "independent-persistent"},
	}})
	guestWrite(t, e.h, vm.ID, "vmdk0", 3<<20, 5000, 5)
	far := t.TempDir()
	during := func() { // after our snapshot: must not reach the replica
		guestWrite(t, e.h, vm.ID, "vmdk0", 100, 3000, 6)
	}
	res := vmjob.ReplicaVM(e.ctx, e.drv, vm, copyOut(t, far, during), e.opts("r1"))
	if res.Err != nil || !res.Done || !res.Partial || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "vmdk2") {
		t.Fatalf("replica: %+v", res)
	}
	dir := filepath.Join(far, "app [x] 1")
	b, err := os.ReadFile(filepath.Join(dir, "app [x] 1.vmx"))
	if err != nil {
		t.Fatal(err)
	}
	conf, err := esxi.ParseVMX(string(b))
	if err != nil {
		t.Fatal(err)
	}
	disks := conf.Disks()
	if len(disks) != 2 || disks[0].FileName != "app.vmdk" || disks[1].FileName != "app_1.vmdk" || conf.Value("scsi0:2.present") != "FALSE" {
		t.Fatalf("replica .vmx disks %+v:\n%s", disks, b)
	}
	for i, d := range disks {
		desc, _, err := vmdk.ReadDescriptor(filepath.Join(dir, d.FileName))
		if err != nil {
			t.Fatal(err)
		}
		x, err := desc.FlatExtent()
		if err != nil || x.File != vmdk.FlatName(d.FileName) || desc.ParentCID != vmdk.NoParentCID {
			t.Fatalf("descriptor %s: extent %+v parent %x: %v", d.FileName, x, desc.ParentCID, err)
		}
		flat, err := vmdk.ExtentPath(filepath.Join(dir, d.FileName), x)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(flat)
		if err != nil {
			t.Fatal(err)
		}
		ext := [][]sim.Extent{ext0, ext1}[i]
		want, _, _ := model(t, e.h, vm.ID, "scsi0:"+string(rune('0'+i)), size, ext, func(ev sim.Event) bool {
			return ev.Op == "snapshot-create" && ev.Fields["name"] == "snapferry-r1"
		})
		equalBytes(t, "replica of "+d.Device+" vs the disk at snapshot time", got, want)
	}
	for _, f := range []string{"app [x] 1.nvram", "app [x] 1.vmxf"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("config file: %v", err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "app [x] 1.vmsd")); err != nil || fi.Size() != 0 {
		t.Errorf("the replica's .vmsd should be empty: %v", err)
	}
	if left := e.ourSnapshots(vm.ID); len(left) != 0 {
		t.Errorf("our snapshots left: %v", left)
	}
	if st, _ := e.drv.PowerState(e.ctx, vm.ID); st != appliance.PoweredOn {
		t.Errorf("VM is %s after a hot replica", st)
	}
	staged, _ := filepath.Glob(filepath.Join(e.state, "snapferry-*"))
	if len(staged) != 0 {
		t.Errorf("staged files left: %v", staged)
	}
}

// A VM with a snapshot of its own is replicated in its current state through a temporary clone:
// the copy is named after the base disk (the .vmx names the user's delta), the user's snapshot
// stays, the clone area goes.
func TestReplicaWithUserSnapshot(t *testing.T) {
	e := newEnv(t)
	const size = 4 << 20
	vm := e.addVM(sim.VMSpec{Name: "app", Datastore: "datastore1", PoweredOn: true,
		Disks: []sim.DiskSpec{{Size: size, Data: []sim.Extent{{Offset: 1 << 20, Length: 1 << 20, Seed: 3}}}}})
	if _, err := e.drv.CreateSnapshot(e.ctx, vm.ID, "before upgrade", "the user's", appliance.SnapshotOptions{}); err != nil {
		t.Fatal(err)
	}
	guestWrite(t, e.h, vm.ID, "vmdk0", 100, 4000, 7)
	want := e.guestView(vm.ID, "vmdk0")
	far := t.TempDir()
	res := vmjob.ReplicaVM(e.ctx, e.drv, vm, copyOut(t, far, nil), e.opts("r4"))
	if res.Err != nil || !res.Done || res.Partial {
		t.Fatalf("replica: %+v", res)
	}
	b, err := os.ReadFile(filepath.Join(far, "app", "app.vmx"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `scsi0:0.fileName = "app.vmdk"`) {
		t.Fatalf("replica .vmx should name the base disk:\n%s", b)
	}
	desc, _, err := vmdk.ReadDescriptor(filepath.Join(far, "app", "app.vmdk"))
	if err != nil {
		t.Fatal(err)
	}
	if x, err := desc.FlatExtent(); err != nil || x.File != "app-flat.vmdk" || desc.ParentFileNameHint != "" {
		t.Fatalf("replica descriptor: %+v, %v", desc, err)
	}
	got, err := os.ReadFile(filepath.Join(far, "app", "app-flat.vmdk"))
	if err != nil {
		t.Fatal(err)
	}
	equalBytes(t, "replica vs the VM's current state", got, want)
	snaps, err := e.drv.Snapshots(e.ctx, vm.ID)
	if err != nil || len(snaps) != 1 || snaps[0].Name != "before upgrade" {
		t.Fatalf("snapshots after the replica: %+v, %v", snaps, err)
	}
	if tmp, _ := filepath.Glob(filepath.Join(e.h.Root, "*", "snapferry-tmp-*")); len(tmp) != 0 {
		t.Errorf("temporary clone folders left: %v", tmp)
	}
}

// guestWrite writes n bytes of Pattern(seed) as the guest, so model can replay it.
func guestWrite(t *testing.T, h *sim.Host, vmid, dk string, off, n int64, seed uint64) {
	t.Helper()
	buf := make([]byte, n)
	sim.Pattern(seed, off, buf)
	if err := h.GuestWrite(vmid, dk, off, buf, seed); err != nil {
		t.Fatal(err)
	}
}

// A push that fails in cold mode: the error says which VM, the VM is powered on again and no
// staged file stays; a VM name that cannot be a folder is refused before the host is touched.
func TestReplicaPushFailureCold(t *testing.T) {
	e := newEnv(t)
	vm := e.addVM(sim.VMSpec{Name: "db", Datastore: "datastore1", PoweredOn: true, Tools: true,
		Disks: []sim.DiskSpec{{Size: 1 << 20, Data: []sim.Extent{{Offset: 0, Length: 4096, Seed: 1}}}}})
	o := e.opts("r2")
	o.Mode = vmjob.Cold
	boom := errors.New("link cut")
	var sawOff bool
	push := func(ctx context.Context, set string, files []replica.File) (replica.Stats, error) {
		st, _ := e.drv.PowerState(ctx, vm.ID)
		sawOff = st == appliance.PoweredOff
		return replica.Stats{}, boom
	}
	res := vmjob.ReplicaVM(e.ctx, e.drv, vm, push, o)
	if !errors.Is(res.Err, boom) || res.Done || !strings.Contains(res.Err.Error(), "VM db") {
		t.Fatalf("failed push: %+v", res)
	}
	if !sawOff {
		t.Error("cold replica pushed while the VM was on")
	}
	if st, _ := e.drv.PowerState(e.ctx, vm.ID); st != appliance.PoweredOn {
		t.Errorf("VM is %s after a failed cold replica", st)
	}
	staged, _ := filepath.Glob(filepath.Join(e.state, "snapferry-*"))
	if len(staged) != 0 {
		t.Errorf("staged files left: %v", staged)
	}
	bad := vmjob.ReplicaVM(e.ctx, e.drv, appliance.VM{ID: vm.ID, Name: "a/b"}, push, e.opts("r3"))
	if bad.Err == nil || !strings.Contains(bad.Err.Error(), "rename the VM") {
		t.Fatalf("slash in the name: %+v", bad)
	}
}
