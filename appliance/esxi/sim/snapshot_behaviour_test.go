package sim

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snapferry/snapferry/appliance/esxi"
	"github.com/snapferry/snapferry/images/vmdk"
)

// diskModel is what a disk should hold, kept in memory (test disks are small).
type diskModel []byte

func newModel(size int64, extents ...Extent) diskModel {
	m := make(diskModel, size)
	for _, e := range extents {
		Pattern(e.Seed, e.Offset, m[e.Offset:e.Offset+e.Length])
	}
	return m
}

func (m diskModel) write(off int64, seed uint64, n int64) {
	Pattern(seed, off, m[off:off+n])
}

// view exports a disk as the guest sees it and reads it whole.
func view(t *testing.T, h *Host, id, disk string) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "view.img")
	if err := h.ExportDisk(id, disk, p); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fileSum(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// snapshotIDs returns name -> id from snapshot.get.
func snapshotIDs(t *testing.T, h *Host, id string) map[string]string {
	t.Helper()
	snaps, err := esxi.ParseSnapshotGet(mustRun(t, h, "vim-cmd", "vmsvc/snapshot.get", id))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, s := range snaps {
		m[s.Name] = s.ID
	}
	return m
}

// Guest writes go to the newest delta and never touch frozen files; removing snapshots in any
// order consolidates the data into the base, and no delta file is left behind. Run on a VMFS-6
// datastore (seSparse, absolute parent hints) and a VMFS-5 one (vmfsSparse, relative hints), with
// a second disk on another datastore.
func TestGuestWritesLandInDeltaAndConsolidate(t *testing.T) {
	for _, vmDS := range []string{"datastore1", "old vmfs5"} {
		t.Run(vmDS, func(t *testing.T) {
			h := newTestHost(t, "datastore1", "old vmfs5", "ssd store")
			const size = 2 << 20
			ext0 := []Extent{{0, 300 << 10, 11}, {1 << 20, 100 << 10, 12}}
			ext1 := []Extent{{512 << 10, 64 << 10, 13}}
			id, err := h.AddVM(VMSpec{Name: "web [x] 01", Datastore: vmDS, PoweredOn: true, Disks: []DiskSpec{
				{Size: size, Data: ext0}, {Size: size, Datastore: "ssd store", Data: ext1},
			}})
			if err != nil {
				t.Fatal(err)
			}
			models := map[string]diskModel{"scsi0:0": newModel(size, ext0...), "scsi0:1": newModel(size, ext1...)}
			vmDir := filepath.Join(h.Root, vmDS, "web [x] 01")
			flat0 := filepath.Join(vmDir, "web [x] 01-flat.vmdk")
			flat1 := filepath.Join(h.Root, "ssd store", "web [x] 01", "web [x] 01_1-flat.vmdk")
			before0, before1 := fileSum(t, flat0), fileSum(t, flat1)
			vmxBefore, err := os.ReadFile(filepath.Join(vmDir, "web [x] 01.vmx"))
			if err != nil {
				t.Fatal(err)
			}

			rng := rand.New(rand.NewPCG(1, 2))
			seed := uint64(100)
			writeSome := func(n int) {
				for i := 0; i < n; i++ {
					disk := []string{"scsi0:0", "scsi0:1"}[i%2]
					off, ln := rng.Int64N(size-70000), 1+rng.Int64N(70000)
					seed++
					buf := make([]byte, ln)
					Pattern(seed, off, buf)
					if err := h.GuestWrite(id, disk, off, buf, seed); err != nil {
						t.Fatal(err)
					}
					models[disk].write(off, seed, ln)
				}
			}
			mustRun(t, h, "vim-cmd", "vmsvc/snapshot.create", id, "user snap", "kept by the user")
			writeSome(10)
			mustRun(t, h, "vim-cmd", "vmsvc/snapshot.create", id, "snapferry-j1")
			writeSome(10)

			if fileSum(t, flat0) != before0 || fileSum(t, flat1) != before1 {
				t.Fatal("a guest write reached a frozen base disk")
			}
			for disk, m := range models {
				if !bytes.Equal(view(t, h, id, disk), m) {
					t.Fatalf("disk %s: guest view differs from the model while snapshotted", disk)
				}
			}
			delta := "-delta.vmdk"
			if vmDS == "datastore1" {
				delta = "-sesparse.vmdk"
			}
			for _, f := range []string{"web [x] 01-000001.vmdk", "web [x] 01-000002.vmdk", "web [x] 01_1-000001.vmdk", "web [x] 01-000002" + delta} {
				if !exists(filepath.Join(vmDir, f)) {
					t.Errorf("delta file %s missing in the VM folder", f)
				}
			}

			// Remove the older (user) snapshot first: its child delta merges into the base.
			ids := snapshotIDs(t, h, id)
			mustRun(t, h, "vim-cmd", "vmsvc/snapshot.remove", id, ids["user snap"])
			writeSome(4)
			for disk, m := range models {
				if !bytes.Equal(view(t, h, id, disk), m) {
					t.Fatalf("disk %s: guest view differs after removing the parent snapshot", disk)
				}
			}
			if got := snapshotIDs(t, h, id); len(got) != 1 || got["snapferry-j1"] == "" {
				t.Fatalf("snapshots left: %v", got)
			}
			mustRun(t, h, "vim-cmd", "vmsvc/snapshot.remove", id, ids["snapferry-j1"])
			b0, _ := os.ReadFile(flat0)
			b1, _ := os.ReadFile(flat1)
			if !bytes.Equal(b0, models["scsi0:0"]) || !bytes.Equal(b1, models["scsi0:1"]) {
				t.Fatal("base disks do not hold every write after consolidation")
			}
			vmxAfter, _ := os.ReadFile(filepath.Join(vmDir, "web [x] 01.vmx"))
			if !bytes.Equal(vmxAfter, vmxBefore) {
				t.Errorf(".vmx not restored:\n%s", vmxAfter)
			}
			left, _ := filepath.Glob(filepath.Join(vmDir, "*-00000*"))
			left2, _ := filepath.Glob(filepath.Join(h.Root, "ssd store", "web [x] 01", "*-00000*"))
			if len(left)+len(left2) != 0 {
				t.Errorf("delta files left: %v %v", left, left2)
			}
		})
	}
}

// A guest writing all the time while snapshots come and go: the frozen base holds exactly the
// writes journaled before the snapshot, and the final disk every write.
func TestConcurrentGuestWhileSnapshotting(t *testing.T) {
	h := newTestHost(t, "datastore1")
	const size = 1 << 20
	ext := []Extent{{0, size / 2, 5}}
	id, err := h.AddVM(VMSpec{Name: "busy", Datastore: "datastore1", PoweredOn: true, Disks: []DiskSpec{{Size: size, Data: ext}}})
	if err != nil {
		t.Fatal(err)
	}
	flat := filepath.Join(h.Root, "datastore1", "busy", "busy-flat.vmdk")
	var wg sync.WaitGroup
	wg.Add(1)
	var guestErr error
	go func() {
		defer wg.Done()
		guestErr = h.GuestRun(id, "vmdk0", 300, 3000, 77, 0)
	}()
	time.Sleep(20 * time.Millisecond)
	mustRun(t, h, "vim-cmd", "vmsvc/snapshot.create", id, "snapferry-c1")
	frozen, err := os.ReadFile(flat)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	mustRun(t, h, "vim-cmd", "vmsvc/snapshot.removeall", id)
	wg.Wait()
	if guestErr != nil {
		t.Fatal(guestErr)
	}
	events, err := h.Events()
	if err != nil {
		t.Fatal(err)
	}
	atSnap, final := newModel(size, ext...), newModel(size, ext...)
	seen, writes, before := false, 0, 0
	for _, ev := range events {
		switch ev.Op {
		case "snapshot-create":
			seen = true
		case "write":
			off, n, seed := atoi64(ev.Fields["off"]), atoi64(ev.Fields["len"]), uint64(atoi64(ev.Fields["seed"]))
			final.write(off, seed, n)
			writes++
			if !seen {
				atSnap.write(off, seed, n)
				before++
			}
		}
	}
	if writes != 300 || before == 0 || before == writes {
		t.Fatalf("journal has %d writes, %d before the snapshot: the test did not overlap guest and snapshot", writes, before)
	}
	if !bytes.Equal(frozen, atSnap) {
		t.Error("frozen base differs from the disk at snapshot time")
	}
	if got, _ := os.ReadFile(flat); !bytes.Equal(got, final) {
		t.Error("consolidated disk misses writes")
	}
}

func atoi64(s string) int64 { n, _ := parseInt(s); return n }

func TestFaultsOnDemand(t *testing.T) {
	h := newTestHost(t, "datastore1")
	clock := &fixedClock{t: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)}
	h.Now = clock.now
	id, err := h.AddVM(VMSpec{Name: "vm", Datastore: "datastore1", PoweredOn: true, Tools: true, Disks: []DiskSpec{{Size: 1 << 20}}})
	if err != nil {
		t.Fatal(err)
	}
	fails := func(env map[string]string, wantOut string, args ...string) {
		t.Helper()
		out, errs, code := run(h, env, "vim-cmd", args...)
		if code == 0 || !strings.Contains(out+errs, wantOut) {
			t.Errorf("vim-cmd %q: exit %d, out %q, err %q; want a failure saying %q", args, code, out, errs, wantOut)
		}
	}
	set := func(f Faults) {
		t.Helper()
		if err := h.SetFaults(f); err != nil {
			t.Fatal(err)
		}
	}

	set(Faults{SnapshotCreateFail: true})
	fails(nil, "vim.fault.GenericVmConfigFault", "vmsvc/snapshot.create", id, "s1")
	set(Faults{DatastoreFull: []string{"datastore1"}})
	fails(nil, "vim.fault.NoDiskSpace", "vmsvc/snapshot.create", id, "s1")
	set(Faults{})
	fails(map[string]string{"ESXISIM_FAULTS": "snapshot-create-fail"}, "GenericVmConfigFault", "vmsvc/snapshot.create", id, "s1")
	fails(map[string]string{"ESXISIM_FAULTS": "no-such-fault"}, "unknown", "vmsvc/snapshot.get", id)
	if n := len(snapshotIDs(t, h, id)); n != 0 {
		t.Fatalf("%d snapshots after failed creates", n)
	}

	// Slow tasks: the snapshot shows only once the task is due.
	set(Faults{SlowTasks: 10 * time.Second})
	mustRun(t, h, "vim-cmd", "vmsvc/snapshot.create", id, "slow")
	if n := len(snapshotIDs(t, h, id)); n != 0 {
		t.Fatal("slow snapshot visible at once")
	}
	if tasks, _ := esxi.ParseTaskList(mustRun(t, h, "vim-cmd", "vmsvc/get.tasklist", id)); len(tasks) != 1 {
		t.Fatalf("tasks = %v", tasks)
	}
	clock.t = clock.t.Add(11 * time.Second)
	if ids := snapshotIDs(t, h, id); ids["slow"] == "" {
		t.Fatal("slow snapshot never appeared")
	}

	// Slow removal: it shows as a task while the command waits, then the snapshot is gone.
	h.Now = nil // the removal sleeps in real time
	set(Faults{})
	mustRun(t, h, "vim-cmd", "vmsvc/snapshot.create", id, "slow2")
	set(Faults{SlowTasks: 200 * time.Millisecond})
	start := time.Now()
	var seen []esxi.Task
	done := make(chan struct{})
	go func() {
		defer close(done)
		for time.Since(start) < 150*time.Millisecond {
			if tasks, err := esxi.ParseTaskList(mustRunQuiet(h, "vim-cmd", "vmsvc/get.tasklist", id)); err == nil && len(tasks) > 0 {
				seen = tasks
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	mustRun(t, h, "vim-cmd", "vmsvc/snapshot.remove", id, snapshotIDs(t, h, id)["slow2"])
	<-done
	if time.Since(start) < 200*time.Millisecond || len(seen) != 1 || seen[0].Op != "removeSnapshot" {
		t.Errorf("slow removal took %s, tasks seen %+v", time.Since(start), seen)
	}
	h.Now = clock.now

	// Removal fails once, then works.
	set(Faults{SnapshotRemoveFail: 1})
	fails(nil, "GenericVmConfigFault", "vmsvc/snapshot.remove", id, snapshotIDs(t, h, id)["slow"])
	mustRun(t, h, "vim-cmd", "vmsvc/snapshot.remove", id, snapshotIDs(t, h, id)["slow"])

	// Tools not running: guest shutdown and quiesced snapshots refused.
	set(Faults{ToolsNotRunning: true})
	fails(nil, "vim.fault.ToolsUnavailable", "vmsvc/power.shutdown", id)
	fails(nil, "vim.fault.ToolsUnavailable", "vmsvc/snapshot.create", id, "q", "", "0", "1")

	// A guest shutdown takes a while: callers poll.
	set(Faults{ShutdownDelay: 5 * time.Second})
	mustRun(t, h, "vim-cmd", "vmsvc/power.shutdown", id)
	if st, _ := esxi.ParsePowerState(mustRun(t, h, "vim-cmd", "vmsvc/power.getstate", id)); st != "on" {
		t.Fatalf("powered %s right after the shutdown request", st)
	}
	clock.t = clock.t.Add(6 * time.Second)
	if st, _ := esxi.ParsePowerState(mustRun(t, h, "vim-cmd", "vmsvc/power.getstate", id)); st != "off" {
		t.Fatalf("powered %s after the shutdown delay", st)
	}
	if err := h.GuestWrite(id, "vmdk0", 0, []byte("x"), 1); err == nil {
		t.Error("guest write to a powered-off VM: want an error")
	}
}

func TestOldRemoveSyntax(t *testing.T) {
	h := newTestHost(t, "datastore1")
	if err := h.Configure("5.5.0", "1331820", true, true); err != nil {
		t.Fatal(err)
	}
	id, err := h.AddVM(VMSpec{Name: "vm", Datastore: "datastore1", Disks: []DiskSpec{{Size: 1 << 20}}})
	if err != nil {
		t.Fatal(err)
	}
	if syn, err := esxi.ParseRemoveUsage(mustRun(t, h, "vim-cmd", "help", "vmsvc/snapshot.remove")); err != nil || syn != esxi.RemoveByLevel {
		t.Fatalf("old host usage parsed as %v, %v", syn, err)
	}
	mustRun(t, h, "vim-cmd", "vmsvc/snapshot.create", id, "a")
	mustRun(t, h, "vim-cmd", "vmsvc/snapshot.create", id, "b")
	mustRun(t, h, "vim-cmd", "vmsvc/snapshot.remove", id, "0", "1", "0") // level 1, index 0: "b"
	if ids := snapshotIDs(t, h, id); len(ids) != 1 || ids["a"] == "" {
		t.Fatalf("after removing level 1: %v", ids)
	}
	// Older hosts print nothing on registervm.
	mustRun(t, h, "vim-cmd", "vmsvc/unregister", id)
	if out := mustRun(t, h, "vim-cmd", "solo/registervm", "/vmfs/volumes/datastore1/vm/vm.vmx"); out != "" {
		t.Errorf("silent registervm printed %q", out)
	}
}

// vmkfstools -i of a snapshotted disk clones the whole chain as the guest sees it.
func TestCloneOfChain(t *testing.T) {
	h := newTestHost(t, "datastore1", "backup")
	ext := []Extent{{4096, 200 << 10, 3}}
	id, err := h.AddVM(VMSpec{Name: "vm", Datastore: "datastore1", PoweredOn: true, Disks: []DiskSpec{{Size: 1 << 20, Data: ext}}})
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, h, "vim-cmd", "vmsvc/snapshot.create", id, "user")
	if err := h.GuestWrite(id, "scsi0:0", 100000, bytes.Repeat([]byte{7}, 5000), 0); err != nil {
		t.Fatal(err)
	}
	mustRun(t, h, "vmkfstools", "-i", "/vmfs/volumes/datastore1/vm/vm-000001.vmdk", "-d", "thin", "/vmfs/volumes/backup/c.vmdk")
	got, _ := os.ReadFile(filepath.Join(h.Root, "backup", "c-flat.vmdk"))
	if !bytes.Equal(got, view(t, h, id, "scsi0:0")) {
		t.Error("clone differs from the guest's view")
	}
	d, err := os.ReadFile(filepath.Join(h.Root, "backup", "c.vmdk"))
	if err != nil {
		t.Fatal(err)
	}
	if desc, err := vmdk.Parse(d); err != nil || esxi.IsDelta(desc) || desc.Size() != 1<<20 {
		t.Errorf("clone descriptor %+v, %v", desc, err)
	}
	out, _, code := run(h, nil, "vmkfstools", "-i", "/vmfs/volumes/datastore1/vm/vm.vmdk", "-d", "thin", "/vmfs/volumes/backup/c.vmdk")
	if code == 0 || !strings.Contains(out, "Failed to clone disk") {
		t.Errorf("clone onto an existing disk: exit %d, %q", code, out)
	}
}
