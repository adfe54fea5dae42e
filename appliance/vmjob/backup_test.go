package vmjob_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/appliance/esxi/sim"
	"github.com/snapferry/snapferry/appliance/vmjob"
	"github.com/snapferry/snapferry/cron/testkit"
	"github.com/snapferry/snapferry/images/repo"
)

// A hot backup while the guest keeps writing holds exactly the disk at snapshot time, and the
// running disk keeps every write once our snapshot is consolidated.
func TestHotBackupWhileGuestWrites(t *testing.T) {
	e := newEnv(t)
	const size = 8 << 20
	ext := []sim.Extent{{Offset: 0, Length: 3 << 20, Seed: 1}, {Offset: 6 << 20, Length: 512 << 10, Seed: 2}}
	vm := e.addVM(sim.VMSpec{Name: "web 01", Datastore: "datastore1", PoweredOn: true, Tools: true,
		Disks: []sim.DiskSpec{{Size: size, Data: ext}}})

	guest := exec.Command(filepath.Join(simBin, "esxisim"), "guest", "run", vm.ID, "vmdk0",
		"--count", "400", "--len", "7000", "--seed", "9", "--interval", "1ms")
	guest.Env = append(os.Environ(), "SNAPFERRY_VMFS_ROOT="+e.h.Root)
	out := &strings.Builder{}
	guest.Stdout, guest.Stderr = out, out
	if err := guest.Start(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, time.Minute, "the guest to get going before the backup", func() bool {
		evs, _ := e.h.Events()
		return len(evs) > 30
	})
	res := vmjob.BackupVM(e.ctx, e.drv, e.r, vm, e.opts("j1"))
	if err := guest.Wait(); err != nil {
		t.Fatalf("guest: %v: %s", err, out)
	}
	if res.Err != nil || !res.Committed || res.Partial {
		t.Fatalf("backup: %+v", res)
	}
	atSnap, before, after := model(t, e.h, vm.ID, "scsi0:0", size, ext, func(ev sim.Event) bool {
		return ev.Op == "snapshot-create" && ev.Fields["name"] == "snapferry-j1"
	})
	if before == 0 || after == 0 {
		t.Fatalf("guest writes %d before and %d after the snapshot: no overlap to test", before, after)
	}
	equalBytes(t, "backed-up disk vs disk at snapshot time", e.restoredDisk(res.Snapshot, "vmdk0"), atSnap)
	all, _, _ := model(t, e.h, vm.ID, "scsi0:0", size, ext, nil)
	equalBytes(t, "running disk after consolidation", e.guestView(vm.ID, "vmdk0"), all)
	if left := e.ourSnapshots(vm.ID); len(left) != 0 {
		t.Errorf("our snapshots left: %v", left)
	}
	sn, err := e.r.LoadSnapshot(e.ctx, res.Snapshot)
	if err != nil {
		t.Fatal(err)
	}
	if sn.Kind != repo.SnapshotVM || sn.VM == nil || sn.VM.Name != "web 01" || sn.VM.Mode != "hot" || len(sn.Disks) != 1 || sn.Disks[0].Device != "scsi0:0" || sn.Tree == nil {
		t.Errorf("snapshot manifest: %+v", sn)
	}
	// The stored .vmx is the VM's own, not the one pointing at our delta.
	files := configFiles(t, e, res.Snapshot)
	if vmx := files["web 01.vmx"]; !strings.Contains(vmx, `scsi0:0.fileName = "web 01.vmdk"`) {
		t.Errorf("stored .vmx:\n%s", vmx)
	}
	for _, f := range []string{"web 01.nvram", "web 01.vmxf", "web 01.vmsd"} {
		if _, ok := files[f]; !ok {
			t.Errorf("config file %s not stored (have %v)", f, keys(files))
		}
	}
}

// A snapshot left by a killed run is removed first; the user's snapshot stays; the VM's current
// state (spread over the user's delta) is backed up through a temporary clone that is removed.
func TestLeftoverRemovedUserSnapshotKept(t *testing.T) {
	e := newEnv(t)
	const size = 4 << 20
	ext := []sim.Extent{{Offset: 1 << 20, Length: 1 << 20, Seed: 3}}
	vm := e.addVM(sim.VMSpec{Name: "app", Datastore: "datastore1", PoweredOn: true, Disks: []sim.DiskSpec{{Size: size, Data: ext}}})
	if _, err := e.drv.CreateSnapshot(e.ctx, vm.ID, "before upgrade", "the user's", appliance.SnapshotOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.h.GuestWrite(vm.ID, "vmdk0", 100, []byte("after the user's snapshot"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.drv.CreateSnapshot(e.ctx, vm.ID, "snapferry-killedrun", "", appliance.SnapshotOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.h.GuestWrite(vm.ID, "vmdk0", 3<<20, []byte("after the leftover"), 0); err != nil {
		t.Fatal(err)
	}
	want := e.guestView(vm.ID, "vmdk0")

	refused := e.opts("j2")
	refused.UserSnapshots = vmjob.Refuse
	res := vmjob.BackupVM(e.ctx, e.drv, e.r, vm, refused)
	if res.Err == nil || res.Committed || !strings.Contains(res.Err.Error(), "snapshot(s) of its own") {
		t.Fatalf("refusing policy: %+v", res)
	}

	res = vmjob.BackupVM(e.ctx, e.drv, e.r, vm, e.opts("j3"))
	if res.Err != nil || !res.Committed {
		t.Fatalf("backup: %+v", res)
	}
	equalBytes(t, "backed-up disk vs the VM's current state", e.restoredDisk(res.Snapshot, "vmdk0"), want)
	equalBytes(t, "running disk after the backup", e.guestView(vm.ID, "vmdk0"), want)
	snaps, err := e.drv.Snapshots(e.ctx, vm.ID)
	if err != nil || len(snaps) != 1 || snaps[0].Name != "before upgrade" {
		t.Fatalf("snapshots after the backup: %+v, %v", snaps, err)
	}
	tmp, _ := filepath.Glob(filepath.Join(e.h.Root, "*", "snapferry-tmp-*"))
	if len(tmp) != 0 {
		t.Errorf("temporary clone folders left: %v", tmp)
	}
}

// Names with spaces and brackets on two datastores; an independent disk and a physical RDM are
// skipped with warnings (partial). Then the restore round trip: new name, other datastore,
// registered; an existing VM is refused, then replaced with --overwrite.
func TestBackupPartialAndRestoreRoundTrip(t *testing.T) {
	e := newEnv(t)
	ext0 := []sim.Extent{{Offset: 0, Length: 1 << 20, Seed: 4}}
	ext1 := []sim.Extent{{Offset: 2 << 20, Length: 300 << 10, Seed: 5}}
	vm := e.addVM(sim.VMSpec{Name: "db [prod] (2)", Datastore: "ssd store (2)", PoweredOn: true, Tools: true,
		Disks: []sim.DiskSpec{
			{Size: 4 << 20, Data: ext0},
			{Size: 3 << 20, Datastore: "datastore1", Data: ext1, Device: "scsi1:0"},
			{Size: 1 << 20, Mode: "independent-persistent"},
			{Size: 1 << 30, RDM: appliance.PhysicalRDM},
		}})
	res := vmjob.BackupVM(e.ctx, e.drv, e.r, vm, e.opts("j4"))
	if res.Err != nil || !res.Committed || !res.Partial || len(res.Warnings) != 2 {
		t.Fatalf("backup: %+v", res)
	}
	if !strings.Contains(res.Warnings[0], "independent") || !strings.Contains(res.Warnings[1], "raw device mapping") {
		t.Errorf("warnings: %q", res.Warnings)
	}
	sn, err := e.r.LoadSnapshot(e.ctx, res.Snapshot)
	if err != nil {
		t.Fatal(err)
	}
	if !sn.Partial || len(sn.Disks) != 2 || sn.Disks[0].Name != "vmdk0" || sn.Disks[1].Name != "vmdk1" || sn.Disks[1].Device != "scsi1:0" {
		t.Fatalf("snapshot disks: %+v", sn.Disks)
	}

	ropts := vmjob.RestoreOptions{Datastore: "datastore1", Name: "db [restored]", Register: true, LockDir: filepath.Join(e.state, "locks")}
	rr, err := vmjob.Restore(e.ctx, e.drv, e.r, sn, ropts)
	if err != nil {
		t.Fatal(err)
	}
	if rr.ID == "" || len(rr.Disks) != 2 || len(rr.Warnings) != 2 {
		t.Fatalf("restore result: %+v", rr)
	}
	cfg, err := e.drv.Config(e.ctx, rr.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "db [restored]" || cfg.Datastore != "datastore1" || len(cfg.Disks) != 2 {
		t.Fatalf("restored VM config: %+v", cfg)
	}
	orig0, orig1 := e.guestView(vm.ID, "vmdk0"), e.guestView(vm.ID, "scsi1:0")
	for i, want := range [][]byte{orig0, orig1} {
		got, err := os.ReadFile(cfg.Disks[i].Extent)
		if err != nil {
			t.Fatal(err)
		}
		equalBytes(t, "restored disk "+cfg.Disks[i].Name, got, want)
		if st, err := os.Stat(cfg.Disks[i].Extent); err == nil {
			if alloc := st.Sys().(*syscall.Stat_t).Blocks * 512; alloc > 2<<20 {
				t.Errorf("restored disk %d is not thin: %d bytes allocated of %d", i, alloc, st.Size())
			}
		}
		if filepath.Dir(cfg.Disks[i].Descriptor) != cfg.Dir {
			t.Errorf("restored disk %d not in the VM folder: %s", i, cfg.Disks[i].Descriptor)
		}
	}
	vmx, _ := os.ReadFile(cfg.LocalVMX)
	for _, s := range []string{`displayName = "db [restored]"`, `nvram = "db [restored].nvram"`, `scsi0:2.present = "FALSE"`, `scsi0:3.present = "FALSE"`} {
		if !strings.Contains(string(vmx), s) {
			t.Errorf("restored .vmx lacks %s:\n%s", s, vmx)
		}
	}
	if st, err := os.Stat(filepath.Join(cfg.Dir, "db [restored].nvram")); err != nil || st.Size() == 0 {
		t.Errorf("restored nvram: %v", err)
	}

	_, err = vmjob.Restore(e.ctx, e.drv, e.r, sn, ropts)
	if err == nil || !strings.Contains(err.Error(), "--overwrite") {
		t.Fatalf("restore over an existing VM: %v", err)
	}
	if _, err := e.drv.Config(e.ctx, rr.ID); err != nil {
		t.Fatalf("the refused restore touched the existing VM: %v", err)
	}
	ropts.Overwrite, ropts.PowerOn = true, true
	rr2, err := vmjob.Restore(e.ctx, e.drv, e.r, sn, ropts)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := e.drv.PowerState(e.ctx, rr2.ID); err != nil || st != appliance.PoweredOn {
		t.Errorf("overwritten VM power: %v, %v", st, err)
	}
	vms, _ := e.drv.VMs(e.ctx)
	count := 0
	for _, v := range vms {
		if v.Name == "db [restored]" {
			count++
		}
	}
	if count != 1 || rr2.ID == rr.ID {
		t.Errorf("after overwrite: %d VMs named db [restored], ids %s -> %s", count, rr.ID, rr2.ID)
	}
}

// Every fault gives a clear result and leaves no snapshot of ours.
func TestFaultsLeaveNoSnapshotOfOurs(t *testing.T) {
	cases := []struct {
		name            string
		faults          sim.Faults
		mode            vmjob.Mode
		quiesce         bool
		forceOff        bool
		shutdownTimeout time.Duration
		ok              bool
		errSubstr       string
		errIs           error
	}{
		{name: "create fails", faults: sim.Faults{SnapshotCreateFail: true}, errSubstr: "GenericVmConfigFault"},
		{name: "datastore full", faults: sim.Faults{DatastoreFull: []string{"datastore1"}}, errIs: appliance.ErrNoSpace},
		{name: "slow tasks", faults: sim.Faults{SlowTasks: 300 * time.Millisecond}, ok: true},
		{name: "removal fails once", faults: sim.Faults{SnapshotRemoveFail: 1}, ok: true},
		{name: "quiesce without tools", faults: sim.Faults{ToolsNotRunning: true}, quiesce: true, errIs: appliance.ErrToolsNotRunning},
		{name: "warm without tools", faults: sim.Faults{ToolsNotRunning: true}, mode: vmjob.Warm, errSubstr: "--force-off"},
		{name: "warm without tools, forced", faults: sim.Faults{ToolsNotRunning: true}, mode: vmjob.Warm, forceOff: true, ok: true},
		// The guest is slower than the timeout: the job fails, and once the guest is down it is
		// powered on again rather than left off.
		{name: "warm, guest slower than the timeout", faults: sim.Faults{ShutdownDelay: 600 * time.Millisecond}, mode: vmjob.Warm, shutdownTimeout: 200 * time.Millisecond, errSubstr: "still running after"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			vm := e.addVM(sim.VMSpec{Name: "vm 1", Datastore: "datastore1", PoweredOn: true, Tools: true,
				Disks: []sim.DiskSpec{{Size: 2 << 20, Data: []sim.Extent{{Offset: 0, Length: 64 << 10, Seed: 1}}}}})
			if err := e.h.SetFaults(c.faults); err != nil {
				t.Fatal(err)
			}
			o := e.opts("f1")
			o.Mode, o.Quiesce, o.ForceOff = c.mode, c.quiesce, c.forceOff
			if c.shutdownTimeout > 0 {
				o.ShutdownTimeout = c.shutdownTimeout
			}
			res := vmjob.BackupVM(e.ctx, e.drv, e.r, vm, o)
			if c.ok && (res.Err != nil || !res.Committed) {
				t.Fatalf("want success: %+v", res)
			}
			if !c.ok {
				if res.Err == nil || res.Committed {
					t.Fatalf("want a failure: %+v", res)
				}
				if c.errSubstr != "" && !strings.Contains(res.Err.Error(), c.errSubstr) || c.errIs != nil && !errors.Is(res.Err, c.errIs) {
					t.Fatalf("error %q: want %q / %v", res.Err, c.errSubstr, c.errIs)
				}
				if !strings.Contains(res.Err.Error(), "vm 1") {
					t.Errorf("error does not name the VM: %v", res.Err)
				}
			}
			if c.faults.ShutdownDelay > 0 {
				time.Sleep(c.faults.ShutdownDelay) // a late guest shutdown would have landed by now
			}
			if err := e.h.SetFaults(sim.Faults{}); err != nil {
				t.Fatal(err)
			}
			if left := e.ourSnapshots(vm.ID); len(left) != 0 {
				t.Errorf("our snapshots left: %v", left)
			}
			if st, err := e.drv.PowerState(e.ctx, vm.ID); err != nil || st != appliance.PoweredOn {
				t.Errorf("VM left %v (%v)", st, err)
			}
		})
	}
}

// A removal that keeps failing is reported after the commit; the next run removes the leftover.
func TestPersistentRemoveFailureThenNextRunCleans(t *testing.T) {
	e := newEnv(t)
	vm := e.addVM(sim.VMSpec{Name: "vm", Datastore: "datastore1", PoweredOn: true, Disks: []sim.DiskSpec{{Size: 1 << 20}}})
	if err := e.h.SetFaults(sim.Faults{SnapshotRemoveFail: -1}); err != nil {
		t.Fatal(err)
	}
	res := vmjob.BackupVM(e.ctx, e.drv, e.r, vm, e.opts("p1"))
	if !res.Committed || res.Err == nil || !strings.Contains(res.Err.Error(), "next run removes it") {
		t.Fatalf("first run: %+v", res)
	}
	if err := e.h.SetFaults(sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	res = vmjob.BackupVM(e.ctx, e.drv, e.r, vm, e.opts("p2"))
	if res.Err != nil || !res.Committed {
		t.Fatalf("second run: %+v", res)
	}
	if left := e.ourSnapshots(vm.ID); len(left) != 0 {
		t.Errorf("our snapshots left: %v", left)
	}
}

// Warm: the guest is down only around the snapshot. Cold: no snapshot at all, the independent
// disk is included, the VM is on again afterwards.
func TestWarmAndColdModes(t *testing.T) {
	e := newEnv(t)
	vm := e.addVM(sim.VMSpec{Name: "vm", Datastore: "datastore1", PoweredOn: true, Tools: true, Disks: []sim.DiskSpec{
		{Size: 1 << 20, Data: []sim.Extent{{Offset: 0, Length: 4096, Seed: 8}}},
		{Size: 1 << 20, Mode: "independent-persistent", Data: []sim.Extent{{Offset: 0, Length: 4096, Seed: 9}}},
	}})
	for _, mode := range []vmjob.Mode{vmjob.Warm, vmjob.Cold} {
		o := e.opts(string(mode))
		o.Mode = mode
		res := vmjob.BackupVM(e.ctx, e.drv, e.r, vm, o)
		if res.Err != nil || !res.Committed || res.Partial != (mode == vmjob.Warm) {
			t.Fatalf("%s: %+v", mode, res)
		}
		if st, _ := e.drv.PowerState(e.ctx, vm.ID); st != appliance.PoweredOn {
			t.Errorf("%s: VM left %s", mode, st)
		}
	}
	evs, err := e.h.Events()
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, ev := range evs {
		if ev.Op != "write" && ev.Op != "register" {
			ops = append(ops, ev.Op)
		}
	}
	want := "power-off snapshot-create power-on snapshot-remove power-off power-on"
	if got := strings.Join(ops, " "); got != want {
		t.Errorf("host events: %s\nwant         %s", got, want)
	}
}

func TestSelectVMsAndInventoryAndLock(t *testing.T) {
	e := newEnv(t)
	a := e.addVM(sim.VMSpec{Name: "web 01", Datastore: "datastore1", PoweredOn: true, Disks: []sim.DiskSpec{{Size: 1 << 20}}})
	b := e.addVM(sim.VMSpec{Name: "db [x]", Datastore: "ssd store (2)", Disks: []sim.DiskSpec{{Size: 1 << 20}, {Size: 2 << 20, Datastore: "datastore1"}}})
	names := func(vms []appliance.VM) string {
		var s []string
		for _, v := range vms {
			s = append(s, v.Name)
		}
		return strings.Join(s, ",")
	}
	for _, c := range []struct{ inc, exc, want string }{
		{"all", "", "web 01,db [x]"},
		{"running", "", "web 01"},
		{"db [x]," + a.ID, "", "web 01,db [x]"},
		{"all", "web 01", "db [x]"},
	} {
		got, err := appliance.SelectVMs(e.ctx, e.drv, c.inc, c.exc)
		if err != nil || names(got) != c.want {
			t.Errorf("SelectVMs(%q, %q) = %s, %v; want %s", c.inc, c.exc, names(got), err, c.want)
		}
	}
	if _, err := appliance.SelectVMs(e.ctx, e.drv, "nope", ""); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown VM: %v", err)
	}
	inv, err := appliance.Inventory(e.ctx, e.drv)
	if err != nil || len(inv) != 2 {
		t.Fatalf("inventory: %+v, %v", inv, err)
	}
	if inv[0].Power != appliance.PoweredOn || inv[1].Power != appliance.PoweredOff || len(inv[1].Disks) != 2 ||
		strings.Join(inv[1].Datastores, ",") != "ssd store (2),datastore1" || inv[1].Disks[1].Size != 2<<20 {
		t.Errorf("inventory: %+v", inv)
	}
	cfg, _ := e.drv.Config(e.ctx, b.ID)
	for _, ex := range []string{"vmdk1", "scsi0:1", "db [x]_1.vmdk"} {
		if !appliance.DiskExcluded(cfg.Disks[1], []string{ex}) || appliance.DiskExcluded(cfg.Disks[0], []string{ex}) {
			t.Errorf("--exclude-disk=%s", ex)
		}
	}

	lock, err := appliance.LockVM(e.ctx, filepath.Join(e.state, "locks"), a.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	o := e.opts("l1")
	o.LockWait = 100 * time.Millisecond
	res := vmjob.BackupVM(e.ctx, e.drv, e.r, a, o)
	if !errors.Is(res.Err, appliance.ErrLocked) {
		t.Errorf("backup of a locked VM: %v", res.Err)
	}
	lock.Unlock()
	o.ExcludeDisks = []string{"vmdk1"}
	results := vmjob.Backup(e.ctx, e.drv, e.r, []appliance.VM{a, b}, o)
	if len(results) != 2 || results[0].Err != nil || results[1].Err != nil {
		t.Fatalf("two VMs: %+v", results)
	}
	if sn, _ := e.r.LoadSnapshot(e.ctx, results[1].Snapshot); len(sn.Disks) != 1 || results[1].Partial {
		t.Errorf("excluded disk: %+v", sn.Disks)
	}
}

func configFiles(t *testing.T, e *env, id repo.ID) map[string]string {
	t.Helper()
	sn, err := e.r.LoadSnapshot(e.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.r.LoadBlob(e.ctx, repo.TreeBlob, *sn.Tree, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := repo.UnmarshalTree(b)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, n := range tr.Nodes {
		var data []byte
		for _, c := range n.Content {
			part, err := e.r.LoadBlob(e.ctx, repo.DataBlob, c, nil)
			if err != nil {
				t.Fatal(err)
			}
			data = append(data, part...)
		}
		out[n.Name] = string(data)
	}
	return out
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// A restore that fails half way (a damaged block map) leaves no folder and registers nothing.
func TestFailedRestoreLeavesNothing(t *testing.T) {
	e := newEnv(t)
	vm := e.addVM(sim.VMSpec{Name: "small", Datastore: "datastore1", Disks: []sim.DiskSpec{{Size: 1 << 20, Data: []sim.Extent{{Offset: 0, Length: 4096, Seed: 1}}}}})
	res := vmjob.BackupVM(e.ctx, e.drv, e.r, vm, e.opts("r1"))
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	sn, err := e.r.LoadSnapshot(e.ctx, res.Snapshot)
	if err != nil {
		t.Fatal(err)
	}
	broken := *sn
	broken.Disks = append([]repo.Disk(nil), sn.Disks...)
	broken.Disks[0].Map = []repo.ID{{1, 2, 3}}
	_, err = vmjob.Restore(e.ctx, e.drv, e.r, &broken, vmjob.RestoreOptions{Datastore: "ssd store (2)", Name: "copy", Register: true, LockDir: e.state})
	if err == nil {
		t.Fatal("restore with a damaged block map: want an error")
	}
	if _, serr := os.Stat(filepath.Join(e.h.Root, "ssd store (2)", "copy")); !os.IsNotExist(serr) {
		t.Errorf("partial restore folder left (%v); error was %v", serr, err)
	}
	if vms, _ := e.drv.VMs(e.ctx); len(vms) != 1 {
		t.Errorf("VMs after a failed restore: %+v", vms)
	}
}
