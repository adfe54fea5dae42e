package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron/exitcode"
	"github.com/snapferry/snapferry/cron/testkit"
	"github.com/snapferry/snapferry/images/disk/disktest"

	"github.com/snapferry/snapferry/appliance/esxi/sim"
	"github.com/snapferry/snapferry/appliance/vmx"
	"github.com/snapferry/snapferry/images/vmdk"
	"github.com/snapferry/snapferry/transfer/sshtest"
)

// vmReplicaEnv is a simulated ESXi host, a loopback sshd whose far root receives the replicas,
// and the arguments that reach it.
type vmReplicaEnv struct {
	root, home, far string
	env, ids        []string
	ssh             []string
	to              string
}

func newVMReplicaEnv(t *testing.T, vms ...sim.VMSpec) *vmReplicaEnv {
	t.Helper()
	s := sshtest.Start(t, sshtest.Options{})
	root, env, ids := simHost(t, vms...)
	dir := t.TempDir()
	far := filepath.Join(dir, "far")
	if err := os.MkdirAll(far, 0o755); err != nil {
		t.Fatal(err)
	}
	return &vmReplicaEnv{root: root, home: filepath.Join(dir, "state"), far: far, env: env, ids: ids,
		ssh: s.Flags(),
		to:  s.Spec("ssh", far)}
}

// replica runs `snapferry replica --vm=NAME` and returns the stats of its replica events by set.
func (e *vmReplicaEnv) replica(t *testing.T, want int, vm string, extra ...string) (map[string]map[string]int64, result) {
	t.Helper()
	args := append([]string{"replica", "--vm=" + vm, "--to", e.to, "--json"}, e.ssh...)
	r := sfEnv(t, e.home, e.env, want, append(args, extra...)...)
	stats := map[string]map[string]int64{}
	var sum struct {
		Items []struct {
			Source  string           `json:"source"`
			Replica map[string]int64 `json:"replica"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil && r.code == want && want == 0 {
		t.Fatalf("replica --json: %v\n%s", err, r.stdout)
	}
	for _, it := range sum.Items {
		if it.Replica != nil {
			stats[it.Source] = it.Replica
		}
	}
	return stats, r
}

// simEvents reads the simulator's event journal.
func (e *vmReplicaEnv) simEvents(t *testing.T) []sim.Event {
	t.Helper()
	h, err := sim.Open(e.root)
	if err != nil {
		t.Fatal(err)
	}
	events, err := h.Events()
	if err != nil {
		t.Fatal(err)
	}
	return events
}

// guestWrites counts the journaled guest writes of vmid from event index since on.
func (e *vmReplicaEnv) guestWrites(t *testing.T, vmid string, since int) int {
	n := 0
	for i, ev := range e.simEvents(t) {
		if i >= since && ev.Op == "write" && ev.Fields["vm"] == vmid {
			n++
		}
	}
	return n
}

// writesAroundLastSnapshot counts the guest writes of vmid from event index since on that came
// before the newest snapferry snapshot was created, and those between its creation and removal.
func (e *vmReplicaEnv) writesAroundLastSnapshot(t *testing.T, vmid string, since int) (before, during int) {
	t.Helper()
	events := e.simEvents(t)
	created, removed := -1, len(events)
	for i, ev := range events {
		if ev.Op == "snapshot-create" && ev.Fields["vm"] == vmid && strings.HasPrefix(ev.Fields["name"], "snapferry-") {
			created, removed = i, len(events)
		}
		if ev.Op == "snapshot-remove" && ev.Fields["vm"] == vmid && created >= 0 && removed == len(events) {
			removed = i
		}
	}
	if created < 0 {
		t.Fatalf("VM %s: no snapferry snapshot was taken", vmid)
	}
	for i, ev := range events {
		if i < since || ev.Op != "write" || ev.Fields["vm"] != vmid {
			continue
		}
		switch {
		case i < created:
			before++
		case i < removed:
			during++
		}
	}
	return before, during
}

// guestWrite writes n bytes of the simulator's pattern as the guest of vm.
func (e *vmReplicaEnv) guestWrite(t *testing.T, vmid, dk string, off, n int64, seed int) {
	t.Helper()
	mustRun(t, e.env, "esxisim", "guest", "write", vmid, dk, strconv.FormatInt(off, 10), strconv.FormatInt(n, 10), "--pattern", strconv.Itoa(seed))
}

// diskAtLastSnapshot is a VM disk as the newest snapferry snapshot froze it: the creation extents
// plus the guest writes the simulator journaled before that snapshot's create event.
func (e *vmReplicaEnv) diskAtLastSnapshot(t *testing.T, vmid, device string, size int64, ext []sim.Extent) []byte {
	t.Helper()
	events := e.simEvents(t)
	last := -1
	for i, ev := range events {
		if ev.Op == "snapshot-create" && ev.Fields["vm"] == vmid && strings.HasPrefix(ev.Fields["name"], "snapferry-") {
			last = i
		}
	}
	if last < 0 {
		t.Fatalf("VM %s: no snapferry snapshot was taken", vmid)
	}
	content := sim.DiskContent(size, ext)
	for _, ev := range events[:last] {
		if ev.WritesTo(vmid, device) {
			sim.ReplayWrite(content, ev)
		}
	}
	return content
}

// farDisks checks that the far .vmx of set names descriptors that exist beside it and whose flat
// extents exist, and returns the flat extents' paths by device.
func (e *vmReplicaEnv) farDisks(t *testing.T, set, vmxName string) map[string]string {
	t.Helper()
	dir := filepath.Join(e.far, set)
	b, err := os.ReadFile(filepath.Join(dir, vmxName))
	if err != nil {
		t.Fatalf("far .vmx: %v", err)
	}
	conf, err := vmx.Parse(string(b))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range conf.Disks() {
		if strings.Contains(d.FileName, "/") {
			t.Fatalf("far .vmx names %s for %s: not a file beside it", d.FileName, d.Device)
		}
		desc, _, err := vmdk.ReadDescriptor(filepath.Join(dir, d.FileName))
		if err != nil {
			t.Fatalf("far .vmx names %s for %s: %v", d.FileName, d.Device, err)
		}
		x, err := desc.FlatExtent()
		if err != nil {
			t.Fatal(err)
		}
		flat, err := vmdk.ExtentPath(filepath.Join(dir, d.FileName), x)
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(flat); err != nil || fi.Size() != x.Size() {
			t.Fatalf("flat extent of %s: %v (size %v, want %d)", d.FileName, err, fi, x.Size())
		}
		out[d.Device] = flat
	}
	if nv := conf.Value("nvram"); nv != "" {
		if _, err := os.Stat(filepath.Join(dir, nv)); err != nil {
			t.Errorf("far .vmx names nvram %s: %v", nv, err)
		}
	}
	return out
}

func (e *vmReplicaEnv) noSnapshotOfOurs(t *testing.T) {
	t.Helper()
	for _, id := range e.ids {
		if snaps := mustRun(t, e.env, "vim-cmd", "vmsvc/snapshot.get", id); strings.Contains(snaps, "snapferry-") {
			t.Fatalf("VM %s kept a snapferry snapshot:\n%s", id, snaps)
		}
	}
}

// signalMidUpdate starts a --bwlimit'ed replica of "app", sends sig once the far flat extent
// differs from before (blocks are being written in place) and returns how the client ended.
func (e *vmReplicaEnv) signalMidUpdate(t *testing.T, flat, before string, sig syscall.Signal) (string, error) {
	t.Helper()
	cmd := exec.Command(binPath, append([]string{"replica", "--vm=app", "--to", e.to, "--bwlimit", "4M"}, e.ssh...)...)
	cmd.Env = append(append(os.Environ(), "SNAPFERRY_HOME="+e.home), e.env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if !testkit.Poll(40*time.Second, func() bool { return disktest.FileSum(t, flat) != before }) {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the far replica never changed during the update:\n%s", out.String())
	}
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	return out.String(), err
}

func equalDisk(t *testing.T, what, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from the disk at snapshot time (len %d vs %d, first difference at %d)", what, len(got), len(want),
			disktest.FirstDifference(got, want))
	}
}

// TestVMReplicaHot replicates a running VM with disks on two datastores hot over a real sshd:
// the far folder runs as it is (its .vmx names descriptors and extents beside it), the flat
// extents equal the disks at snapshot time and stay sparse, a second run after guest writes sends
// only the changed blocks, a run while the guest writes copies the snapshot's moment, no
// snapferry snapshot stays on the VM, and a VM with an independent disk exits 3 with a warning.
func TestVMReplicaHot(t *testing.T) {
	const size0, size1 = 32 << 20, 16 << 20
	ext0 := []sim.Extent{{Offset: 0, Length: 2 << 20, Seed: 1}, {Offset: 20 << 20, Length: 1 << 20, Seed: 2}}
	ext1 := []sim.Extent{{Offset: 4 << 20, Length: 1 << 20, Seed: 3}}
	e := newVMReplicaEnv(t,
		sim.VMSpec{Name: "web [r] 1", Datastore: "datastore1", PoweredOn: true, Tools: true, Disks: []sim.DiskSpec{
			{Size: size0, Data: ext0},
			{Size: size1, Datastore: "ssd store", Data: ext1},
		}},
		sim.VMSpec{Name: "db 2", Datastore: "datastore1", PoweredOn: true, Tools: true, Disks: []sim.DiskSpec{
			{Size: 8 << 20, Data: []sim.Extent{{Offset: 0, Length: 1 << 20, Seed: 4}}},
			{Size: 8 << 20, Mode: "independent-persistent"},
		}},
	)
	web := e.ids[0]
	const set = "web [r] 1"
	first, r1 := e.replica(t, 0, set)
	if first[set]["bytes_sent"] < 3<<20 {
		t.Fatalf("first run sent too little: %v", first)
	}
	if !strings.Contains(r1.stderr, `"item":"web [r] 1"`) || !strings.Contains(r1.stderr, `"bytes_total":50331648`) || !strings.Contains(r1.stderr, `"final":true`) {
		t.Errorf("no final progress event for the set (48 MiB of disks):\n%s", r1.stderr)
	}
	flats := e.farDisks(t, set, "web [r] 1.vmx")
	if len(flats) != 2 {
		t.Fatalf("far disks: %v", flats)
	}
	equalDisk(t, "far vmdk0", flats["scsi0:0"], e.diskAtLastSnapshot(t, web, "scsi0:0", size0, ext0))
	equalDisk(t, "far vmdk1", flats["scsi0:1"], e.diskAtLastSnapshot(t, web, "scsi0:1", size1, ext1))
	// Holes stay holes: 3 MiB of data in 32 MiB, 1 MiB in 16 MiB.
	if a := disktest.Allocated(t, flats["scsi0:0"]); a > 4<<20 {
		t.Errorf("far vmdk0 has %d bytes allocated, want at most the 3 MiB of data", a)
	}
	if a := disktest.Allocated(t, flats["scsi0:1"]); a > 2<<20 {
		t.Errorf("far vmdk1 has %d bytes allocated, want about its 1 MiB of data", a)
	}
	e.noSnapshotOfOurs(t)

	// Guest writes into one block of each disk and a hole of vmdk0: three blocks change (64 KiB
	// blocks: the automatic replica block size for disks this small).
	e.guestWrite(t, web, "vmdk0", 1<<20+100, 5000, 7)
	e.guestWrite(t, web, "vmdk0", 10<<20, 4096, 8)
	e.guestWrite(t, web, "vmdk1", 4<<20+4096, 4096, 9)
	second, _ := e.replica(t, 0, set)
	if second[set]["blocks_changed"] != 3 || second[set]["bytes_changed"] != 3<<16 || second[set]["bytes_sent"] > 4<<16 {
		t.Fatalf("second run should send the 3 changed blocks: %v", second[set])
	}
	flats = e.farDisks(t, set, "web [r] 1.vmx")
	equalDisk(t, "far vmdk0 after the second run", flats["scsi0:0"], e.diskAtLastSnapshot(t, web, "scsi0:0", size0, ext0))
	equalDisk(t, "far vmdk1 after the second run", flats["scsi0:1"], e.diskAtLastSnapshot(t, web, "scsi0:1", size1, ext1))

	// A run while the guest keeps writing copies the disk as our snapshot froze it.
	mark := len(e.simEvents(t)) // the writes of this guest run come after
	guest := exec.Command(filepath.Join(simDir, "esxisim"), "guest", "run", web, "vmdk0", "--count", "3000", "--len", "6000", "--seed", "11", "--interval", "2ms")
	guest.Env = append(os.Environ(), e.env...)
	var gout bytes.Buffer
	guest.Stdout, guest.Stderr = &gout, &gout
	if err := guest.Start(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, "the guest to start writing", func() bool { return e.guestWrites(t, web, mark) > 0 })
	e.replica(t, 0, set)
	if err := guest.Wait(); err != nil {
		t.Fatalf("guest: %v\n%s", err, gout.String())
	}
	// The run really overlapped the writes: some landed before our snapshot, some while the
	// replica was being pushed from it (before the snapshot was removed).
	if before, during := e.writesAroundLastSnapshot(t, web, mark); before == 0 || during == 0 {
		t.Fatalf("guest writes and replica did not overlap: %d writes before our snapshot, %d while it existed", before, during)
	}
	flats = e.farDisks(t, set, "web [r] 1.vmx")
	equalDisk(t, "far vmdk0 of a run during guest writes", flats["scsi0:0"], e.diskAtLastSnapshot(t, web, "scsi0:0", size0, ext0))
	e.noSnapshotOfOurs(t)

	// An independent disk: partial, with a warning naming it; the far .vmx leaves it out.
	_, r := e.replica(t, exitcode.Partial, "db 2")
	if !strings.Contains(r.stdout, "vmdk1") || !strings.Contains(r.stdout, "independent") {
		t.Fatalf("partial replica does not name the skipped disk:\n%s\n%s", r.stdout, r.stderr)
	}
	if got := e.farDisks(t, "db 2", "db 2.vmx"); len(got) != 1 {
		t.Fatalf("far db 2 should have its one copied disk: %v", got)
	}
	e.noSnapshotOfOurs(t)
	// VM options make no sense for PATHs; --vm with PATHs is one of two jobs.
	if r := sfEnv(t, e.home, e.env, exitcode.Usage, "replica", e.far, "--mode=cold", "--to", e.to); !strings.Contains(r.stderr, "--mode") {
		t.Errorf("--mode with PATHs: %s", r.stderr)
	}
	sfEnv(t, e.home, e.env, exitcode.Usage, "replica", e.far, "--vm=db 2", "--to", e.to)
	jobs := sfEnv(t, e.home, e.env, 0, "jobs", "--json")
	if !strings.Contains(jobs.stdout, `"exit": 3`) || !strings.Contains(jobs.stdout, "replica") {
		t.Fatalf("job history:\n%s", jobs.stdout)
	}
}

// TestVMReplicaKilledMidUpdate interrupts --bwlimit'ed updates once blocks are being written in
// place on the far side. SIGINT: the client aborts, the far replica is the previous one byte for
// byte, no snapshot stays, exit 130. SIGKILL: the torn replica is rolled back on the far side, and
// the next run removes the snapshot the killed run left on the VM and completes.
func TestVMReplicaKilledMidUpdate(t *testing.T) {
	const size = 64 << 20
	ext := []sim.Extent{{Offset: 0, Length: 40 << 20, Seed: 21}}
	e := newVMReplicaEnv(t, sim.VMSpec{Name: "app", Datastore: "datastore1", PoweredOn: true, Tools: true,
		Disks: []sim.DiskSpec{{Size: size, Data: ext}}})
	id := e.ids[0]
	e.replica(t, 0, "app")
	flat := e.farDisks(t, "app", "app.vmx")["scsi0:0"]
	before := disktest.FileSum(t, flat)
	// 40 changed blocks of incompressible data: about 10 s at 4 MiB/s. The far side writes them
	// in place in groups of 16, so from about 4 s on the replica is torn until the commit.
	e.guestWrite(t, id, "vmdk0", 0, 40<<20, 30)

	journals := filepath.Join(e.far, ".snapferry-undo", "*.journal")

	// SIGINT mid-update: the client aborts, the far side rolls back at once, our snapshot goes.
	out, werr := e.signalMidUpdate(t, flat, before, syscall.SIGINT)
	if ee, ok := werr.(*exec.ExitError); !ok || ee.ExitCode() != exitcode.Interrupted {
		t.Fatalf("interrupted replica: %v, want exit %d:\n%s", werr, exitcode.Interrupted, out)
	}
	if disktest.FileSum(t, flat) != before {
		t.Fatal("an interrupted update was not rolled back on the far side")
	}
	if m, _ := filepath.Glob(journals); len(m) != 0 {
		t.Fatalf("journal left after the abort: %v", m)
	}
	e.noSnapshotOfOurs(t)

	// SIGKILL mid-update: nothing on this side cleans up.
	out, werr = e.signalMidUpdate(t, flat, before, syscall.SIGKILL)
	if ee, ok := werr.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the client was not killed mid-update (%v); the test proves nothing:\n%s", werr, out)
	}
	// The far side rolls back when the session ends (or, when serve died with the link, at the
	// next serve start or update of the set): wait a little for its journal to go; if it went, the
	// replica must be the previous one byte for byte.
	if !testkit.Poll(3*time.Second, func() bool { m, _ := filepath.Glob(journals); return len(m) == 0 }) {
		t.Log("the far side still holds the journal; the next run's begin rolls it back")
	}
	if m, _ := filepath.Glob(journals); len(m) == 0 && disktest.FileSum(t, flat) != before {
		t.Fatal("the far side dropped its journal but the replica is not the previous one")
	}
	if snaps := mustRun(t, e.env, "vim-cmd", "vmsvc/snapshot.get", id); !strings.Contains(snaps, "snapferry-") {
		t.Fatalf("the killed run left no snapshot; the test proves nothing:\n%s", snaps)
	}

	_, r := e.replica(t, 0, "app")
	if !strings.Contains(r.stderr, "left by an earlier snapferry run") {
		t.Errorf("the next run did not say it removed the leftover snapshot:\n%s", r.stderr)
	}
	flat = e.farDisks(t, "app", "app.vmx")["scsi0:0"]
	equalDisk(t, "far disk after the run that followed the kill", flat, e.diskAtLastSnapshot(t, id, "scsi0:0", size, ext))
	if m, _ := filepath.Glob(journals); len(m) != 0 {
		t.Errorf("journal left after a complete run: %v", m)
	}
	e.noSnapshotOfOurs(t)
}
