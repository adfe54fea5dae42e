package vmjob_test

import (
	"testing"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/appliance/esxi/sim"
	"github.com/snapferry/snapferry/appliance/vmjob"
	"github.com/snapferry/snapferry/images/repo"
)

// The `make demo` story at library level: a simulated host with a running VM (esxisim demo),
// a hot backup, a second one after the guest wrote a little (it stores only the changed blocks
// and names the first as parent), a repository check, a restore as a new VM.
func TestDemoFlow(t *testing.T) {
	e := newEnv(t)
	h, err := sim.NewHost(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	id, err := sim.BuildDemo(h)
	if err != nil {
		t.Fatal(err)
	}
	e.h = h
	e.drv = driverFor(t, h)
	vms, err := appliance.SelectVMs(e.ctx, e.drv, "running", "")
	if err != nil || len(vms) != 1 || vms[0].ID != id {
		t.Fatalf("running VMs: %+v, %v", vms, err)
	}
	first := vmjob.Backup(e.ctx, e.drv, e.r, vms, e.opts("demo1"))[0]
	if first.Err != nil || !first.Committed {
		t.Fatalf("first backup: %+v", first)
	}
	if err := h.GuestWrite(id, "vmdk0", 10<<20, make([]byte, 8192), 0); err != nil {
		t.Fatal(err)
	}
	if err := h.GuestRun(id, "vmdk1", 3, 5000, 77, 0); err != nil {
		t.Fatal(err)
	}
	second := vmjob.Backup(e.ctx, e.drv, e.r, vms, e.opts("demo2"))[0]
	if second.Err != nil || !second.Committed {
		t.Fatalf("second backup: %+v", second)
	}
	if second.Stats.BlobsReused == 0 || second.Stats.BytesAdded >= first.Stats.BytesAdded/2 {
		t.Errorf("second backup is not incremental: first %+v, second %+v", first.Stats, second.Stats)
	}
	sn, err := e.r.LoadSnapshot(e.ctx, second.Snapshot)
	if err != nil {
		t.Fatal(err)
	}
	if sn.Parent == nil || *sn.Parent != first.Snapshot {
		t.Errorf("second snapshot's parent = %v, want %s", sn.Parent, first.Snapshot.Short())
	}
	report, err := e.r.Check(e.ctx, repo.CheckOptions{ReadData: true})
	if err != nil || !report.OK() {
		t.Fatalf("check: %+v, %v", report, err)
	}
	rr, err := vmjob.Restore(e.ctx, e.drv, e.r, sn, vmjob.RestoreOptions{Datastore: "ssd store", Name: "web restored", Register: true, PowerOn: true,
		LockDir: e.state + "/locks"})
	if err != nil {
		t.Fatal(err)
	}
	for _, dk := range []string{"vmdk0", "vmdk1"} {
		equalBytes(t, "restored "+dk, e.guestView(rr.ID, dk), e.guestView(id, dk))
	}
}
