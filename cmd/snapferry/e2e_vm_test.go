package main

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/appliance/esxi/sim"
	"github.com/snapferry/snapferry/appliance/esxi/simtest"
)

var (
	simOnce sync.Once
	simDir  string
	simErr  error
)

// simHost builds the ESXi simulator once and makes a host with two datastores and the VMs given;
// it returns the environment that points snapferry (and the tool names) at it.
func simHost(t *testing.T, vms ...sim.VMSpec) (root string, env []string, ids []string) {
	t.Helper()
	simOnce.Do(func() {
		simDir = filepath.Join(filepath.Dir(binPath), "simbin")
		if simErr = os.MkdirAll(simDir, 0o755); simErr == nil {
			simErr = simtest.Build(simDir)
		}
	})
	if simErr != nil {
		t.Fatal(simErr)
	}
	root = filepath.Join(t.TempDir(), "vmfs")
	h, err := sim.NewHost(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, ds := range []string{"datastore1", "ssd store"} {
		if err := h.AddDatastore(ds, sim.DatastoreOptions{Type: "VMFS-6", Capacity: 64 << 30}); err != nil {
			t.Fatal(err)
		}
	}
	for _, spec := range vms {
		id, err := h.AddVM(spec)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	env = []string{"PATH=" + simDir + ":" + os.Getenv("PATH"), "SNAPFERRY_VMFS_ROOT=" + root, "ESXISIM_FAULTS="}
	return root, env, ids
}

// sfEnv runs the binary with extra environment.
func sfEnv(t *testing.T, home string, env []string, want int, args ...string) result {
	t.Helper()
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		t.Setenv(k, v)
	}
	return mustSF(t, home, want, args...)
}

// TestVMBackupPartialAndRestore: a VM with an independent disk and a physical RDM is backed up
// hot with the partial exit code and a warning naming each skipped disk; --exclude-disk works; no
// snapferry snapshot stays on the VM; restore refuses to overwrite an existing VM without
// --overwrite, then replaces it.
func TestVMBackupPartialAndRestore(t *testing.T) {
	_, env, ids := simHost(t,
		sim.VMSpec{Name: "db (prod) 1", Datastore: "datastore1", PoweredOn: true, Tools: true, Disks: []sim.DiskSpec{
			{Size: 32 << 20, Data: []sim.Extent{{Offset: 0, Length: 2 << 20, Seed: 1}}},
			{Size: 16 << 20, Datastore: "ssd store", Data: []sim.Extent{{Offset: 1 << 20, Length: 1 << 20, Seed: 2}}},
			{Size: 8 << 20, Mode: "independent-persistent"},
			{Size: 8 << 20, RDM: appliance.PhysicalRDM},
		}},
		sim.VMSpec{Name: "web 2", Datastore: "ssd store", PoweredOn: true, Tools: true, Disks: []sim.DiskSpec{
			{Size: 16 << 20, Data: []sim.Extent{{Offset: 0, Length: 1 << 20, Seed: 3}}},
		}},
	)
	dir := t.TempDir()
	home, repoDir := filepath.Join(dir, "state"), filepath.Join(dir, "repo")
	sfEnv(t, home, env, 0, "init", repoDir)
	vms := sfEnv(t, home, env, 0, "vms")
	if !strings.Contains(vms.stdout, "db (prod) 1") || !strings.Contains(vms.stdout, "independent") || !strings.Contains(vms.stdout, "raw device mapping") {
		t.Fatalf("vms output:\n%s", vms.stdout)
	}
	r := sfEnv(t, home, env, exitPartial, "backup", "--vm=all", "--to", repoDir)
	out := r.stdout + r.stderr
	if !strings.Contains(out, "vmdk2") || !strings.Contains(out, "vmdk3") {
		t.Fatalf("partial backup does not name the skipped disks:\n%s", out)
	}
	// Excluding the two disks that cannot be backed up makes the run complete.
	sfEnv(t, home, env, 0, "backup", "--vm=db (prod) 1", "--exclude-disk=vmdk2,scsi0:3", "--to", repoDir)
	for _, id := range ids {
		snaps := mustRun(t, env, "vim-cmd", "vmsvc/snapshot.get", id)
		if strings.Contains(snaps, "snapferry-") {
			t.Fatalf("VM %s kept a snapferry snapshot:\n%s", id, snaps)
		}
	}
	sfEnv(t, home, env, 0, "restore", "latest", "--source", "web 2", "--from", repoDir, "--datastore", "datastore1", "--name", "web 2 copy", "--register")
	refused := sfEnv(t, home, env, exitPartial, "restore", "latest", "--source", "web 2", "--from", repoDir, "--datastore", "datastore1", "--name", "web 2 copy", "--register")
	if !strings.Contains(refused.stderr, "--overwrite") {
		t.Fatalf("refusal does not say what to do: %s", refused.stderr)
	}
	sfEnv(t, home, env, 0, "restore", "latest", "--source", "web 2", "--from", repoDir, "--datastore", "datastore1", "--name", "web 2 copy", "--register", "--overwrite", "--power-on")
	// Now it runs: replacing it needs --power-off as well.
	running := sfEnv(t, home, env, exitFailed, "restore", "latest", "--source", "web 2", "--from", repoDir, "--datastore", "datastore1", "--name", "web 2 copy", "--register", "--overwrite")
	if !strings.Contains(running.stderr, "--power-off") {
		t.Fatalf("overwrite of a running VM not refused with the hint: %s", running.stderr)
	}
	sfEnv(t, home, env, 0, "restore", "latest", "--source", "web 2", "--from", repoDir, "--datastore", "datastore1", "--name", "web 2 copy", "--register", "--overwrite", "--power-off")
	list := mustRun(t, env, "vim-cmd", "vmsvc/getallvms")
	n := 0
	for _, l := range strings.Split(list, "\n") {
		if strings.Contains(l, "web 2 copy") {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("want exactly one restored VM:\n%s", list)
	}
	sfEnv(t, home, env, 0, "check", "--repo", repoDir, "--read-data")
	st := sfEnv(t, home, env, 0, "status")
	if !strings.Contains(st.stdout, "all healthy") {
		t.Fatalf("status after good runs:\n%s", st.stdout)
	}
	// A crashed run's snapshot: status needs a human (exit 1) and names it; the next backup of
	// that VM removes it, and the user's own snapshot stays.
	mustRun(t, env, "vim-cmd", "vmsvc/snapshot.create", ids[1], "snapferry-20260101-000000-dead00", "crashed", "0", "0")
	mustRun(t, env, "vim-cmd", "vmsvc/snapshot.create", ids[1], "before upgrade", "the user's", "0", "0")
	st = sfEnv(t, home, env, exitFailed, "status")
	if !strings.Contains(st.stdout, "snapferry-20260101-000000-dead00") || strings.Contains(st.stdout, "before upgrade") {
		t.Fatalf("status does not name only our leftover:\n%s", st.stdout)
	}
	sfEnv(t, home, env, 0, "backup", "--vm", "web 2", "--to", repoDir)
	snaps := mustRun(t, env, "vim-cmd", "vmsvc/snapshot.get", ids[1])
	if strings.Contains(snaps, "snapferry-") || !strings.Contains(snaps, "before upgrade") {
		t.Fatalf("after the backup:\n%s", snaps)
	}
	sfEnv(t, home, env, 0, "status")
}

// TestCronHooksHearLeftoverAndLowSpace: a scheduled VM backup finds a snapshot a killed run left
// behind and a store under its --low-space limit; `cron run` fires the snapshot.leftover and
// store.low-space hooks with the details in SNAPFERRY_* variables, and the job still succeeds.
func TestCronHooksHearLeftoverAndLowSpace(t *testing.T) {
	_, env, ids := simHost(t, sim.VMSpec{Name: "app 1", Datastore: "datastore1", PoweredOn: true, Tools: true,
		Disks: []sim.DiskSpec{{Size: 16 << 20, Data: []sim.Extent{{Offset: 0, Length: 1 << 20, Seed: 5}}}}})
	dir := t.TempDir()
	home, repoDir := filepath.Join(dir, "state"), filepath.Join(dir, "repo")
	events := filepath.Join(dir, "events.log")
	sfEnv(t, home, env, 0, "init", repoDir)
	mustRun(t, env, "vim-cmd", "vmsvc/snapshot.create", ids[0], "snapferry-20260101-000000-beef00", "crashed", "0", "0")
	hook := `snapshot.leftover,store.low-space:echo "$SNAPFERRY_EVENT vm=$SNAPFERRY_VM snapshot=$SNAPFERRY_SNAPSHOT free=$SNAPFERRY_FREE_BYTES" >> ` + events
	cronSF(t, home, 0, "cron", "add", "nightly", "@daily", "--on-event="+hook, "--",
		"backup", "--vm=app 1", "--to="+repoDir, "--low-space=1000T")
	cronSF(t, home, 0, "cron", "run", "nightly")
	got := readFile(t, events)
	if !strings.Contains(got, "snapshot.leftover vm=app 1 snapshot=snapferry-20260101-000000-beef00") {
		t.Fatalf("no snapshot.leftover hook with details:\n%s", got)
	}
	if !strings.Contains(got, "store.low-space") || strings.Contains(got, "free= ") {
		t.Fatalf("no store.low-space hook with the free bytes:\n%s", got)
	}
	// The next run finds neither: no leftover, and a limit of 0 never warns.
	os.Remove(events)
	cronSF(t, home, 0, "cron", "add", "nightly", "@daily", "--replace", "--on-event="+hook, "--",
		"backup", "--vm=app 1", "--to="+repoDir, "--low-space=0")
	cronSF(t, home, 0, "cron", "run", "nightly")
	if b, err := os.ReadFile(events); err == nil && len(b) > 0 {
		t.Fatalf("hooks fired without a cause:\n%s", b)
	}
}
