package sim

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/appliance/esxi"
)

// The simulator must print what the reference shows, byte for byte.

func TestGetAllVMsMatchesReference(t *testing.T) {
	h := newTestHost(t, "LocalDatastore_001")
	if _, err := h.AddVM(VMSpec{ID: 3, Name: "CentosTest", Datastore: "LocalDatastore_001", GuestOS: "otherLinuxGuest", HWVersion: 10,
		Disks: []DiskSpec{{Size: 1 << 20}}}); err != nil {
		t.Fatal(err)
	}
	if got, want := mustRun(t, h, "vim-cmd", "vmsvc/getallvms"), refSample(t, "getallvms.txt", "sample 1", false); got != want {
		t.Errorf("sample 1:\n got %q\nwant %q", got, want)
	}

	// Sample 2's first two rows come from one host: compare them (its header is another host's,
	// and row 1 carries stray trailing blanks the reference keeps).
	h2 := newTestHost(t, "datastore1 (4)")
	for _, vm := range []VMSpec{
		{ID: 1424, Name: "sap-router", Dir: "sap-router", VMXName: "win2k8x64.vmx"},
		{ID: 1440, Name: "RAS-3.250", Dir: "RAS", VMXName: "win2k8x64.vmx"},
	} {
		vm.Datastore, vm.GuestOS, vm.HWVersion = "datastore1 (4)", "winLonghorn64Guest", 7
		if _, err := h2.AddVM(vm); err != nil {
			t.Fatal(err)
		}
	}
	got := strings.Split(mustRun(t, h2, "vim-cmd", "vmsvc/getallvms"), "\n")
	want := strings.Split(refSample(t, "getallvms.txt", "sample 2", false), "\n")
	for i := 1; i <= 2; i++ {
		if strings.TrimRight(got[i], " ") != strings.TrimRight(want[i], " ") {
			t.Errorf("sample 2 row %d:\n got %q\nwant %q", i, got[i], want[i])
		}
	}

	// ESXi 8 with no VMs prints only its header.
	h8 := newTestHost(t)
	if err := h8.Configure("8.0.2", "22380479", false, false); err != nil {
		t.Fatal(err)
	}
	if got, want := mustRun(t, h8, "vim-cmd", "vmsvc/getallvms"), refSample(t, "getallvms.txt", "sample 4", false); got != want {
		t.Errorf("sample 4:\n got %q\nwant %q", got, want)
	}
}

// Names with spaces and a multi-line annotation: the simulator's rows parse back to the VMs.
func TestGetAllVMsRoundTripsThroughParser(t *testing.T) {
	h := newTestHost(t, "datastore1", "ssd store")
	specs := []VMSpec{
		{Name: "web 01", Datastore: "datastore1", GuestOS: "ubuntu64Guest", Annotation: "Front end.\nOwner: ops team"},
		{Name: "db [prod] (2)", Datastore: "ssd store", GuestOS: "debian11_64Guest"},
	}
	for _, s := range specs {
		if _, err := h.AddVM(s); err != nil {
			t.Fatal(err)
		}
	}
	vms, warn, err := esxi.ParseGetAllVMs(mustRun(t, h, "vim-cmd", "vmsvc/getallvms"))
	if err != nil || len(warn) != 0 || len(vms) != 2 {
		t.Fatalf("parse: %+v %q %v", vms, warn, err)
	}
	for i, s := range specs {
		if vms[i].Name != s.Name || vms[i].Datastore != s.Datastore || vms[i].Annotation != s.Annotation ||
			vms[i].VMXPath != "["+s.Datastore+"] "+s.Name+"/"+s.Name+".vmx" || vms[i].Version != "vmx-19" {
			t.Errorf("VM %d parsed as %+v", i, vms[i])
		}
	}
}

func TestSnapshotOutputMatchesReference(t *testing.T) {
	h := newTestHost(t, "datastore1")
	clock := &fixedClock{t: time.Date(2017, 11, 29, 23, 59, 6, 0, time.UTC)}
	h.Now = clock.now
	id, err := h.AddVM(VMSpec{Name: "CentosTest", Datastore: "datastore1", PoweredOn: true, Tools: true, Disks: []DiskSpec{{Size: 1 << 20}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustRun(t, h, "vim-cmd", "vmsvc/snapshot.get", id); got != refSample(t, "snapshot.txt", "no snapshots", false) {
		t.Errorf("empty snapshot.get = %q", got)
	}
	// Four throw-away snapshots make the next ids 5 and 6, as in the sample.
	for i := 0; i < 4; i++ {
		mustRun(t, h, "vim-cmd", "vmsvc/snapshot.create", id, "tmp"+strconv.Itoa(i))
	}
	if got := mustRun(t, h, "vim-cmd", "vmsvc/snapshot.removeall", id); got != refSample(t, "snapshot.txt", "snapshot.removeall", false) {
		t.Errorf("removeall = %q", got)
	}
	if got := mustRun(t, h, "vim-cmd", "vmsvc/snapshot.create", id, "snap0", "before upgrade", "0", "0"); got != refSample(t, "snapshot.txt", "", false) {
		t.Errorf("snapshot.create = %q", got)
	}
	mustRun(t, h, "vim-cmd", "vmsvc/power.off", id)
	clock.t = time.Date(2014, 8, 21, 22, 0, 23, 0, time.UTC)
	mustRun(t, h, "vim-cmd", "vmsvc/snapshot.create", id, "finish_install", "clush configured\ntmp and all traces of mapr removed")
	if got, want := mustRun(t, h, "vim-cmd", "vmsvc/snapshot.get", id), refSample(t, "snapshot.txt", "a tree", false); got != want {
		t.Errorf("snapshot.get:\n got %q\nwant %q", got, want)
	}
	if got, want := mustRun(t, h, "vim-cmd", "vmsvc/snapshot.remove", id, "6"), refSample(t, "snapshot.txt", "snapshot.remove ID SNAPID", false); got != want {
		t.Errorf("snapshot.remove:\n got %q\nwant %q", got, want)
	}
}

func TestPowerOutputMatchesReference(t *testing.T) {
	h := newTestHost(t, "datastore1")
	id, err := h.AddVM(VMSpec{Name: "vm", Datastore: "datastore1", Disks: []DiskSpec{{Size: 1 << 20}}})
	if err != nil {
		t.Fatal(err)
	}
	check := func(want string, code int, args ...string) {
		t.Helper()
		out, errs, c := run(h, nil, "vim-cmd", args...)
		if out != want || c != code {
			t.Errorf("vim-cmd %q: exit %d (want %d), stderr %q\n got %q\nwant %q", args, c, code, errs, out, want)
		}
	}
	s := func(title string) string { return refSample(t, "power.txt", title, false) }
	states := strings.Split(strings.TrimSuffix(refSample(t, "power.txt", "", false), "\n"), "\n")
	check("Retrieved runtime info\nPowered off\n", 0, "vmsvc/power.getstate", id)
	check(s("power.on ID (success)"), 0, "vmsvc/power.on", id)
	check(strings.Join(states[:2], "\n")+"\n", 0, "vmsvc/power.getstate", id)
	check(s("ESXi 6.0/6.5"), 1, "vmsvc/power.on", id)
	check(s("Tools is not running"), 1, "vmsvc/power.shutdown", id)
	if err := h.Configure("5.5.0", "1331820", false, false); err != nil {
		t.Fatal(err)
	}
	check(s("older hosts"), 1, "vmsvc/power.on", id)
	check(s("power.off ID (success"), 0, "vmsvc/power.off", id)
}

func TestRegisterOutputMatchesReference(t *testing.T) {
	h := newTestHost(t, "datastore1")
	id, err := h.AddVM(VMSpec{ID: 14, Name: "web01", Datastore: "datastore1", Disks: []DiskSpec{{Size: 1 << 20}}})
	if err != nil {
		t.Fatal(err)
	}
	vmx := "/vmfs/volumes/datastore1/web01/web01.vmx"
	if out := mustRun(t, h, "vim-cmd", "vmsvc/unregister", id); out != "" {
		t.Errorf("unregister printed %q", out)
	}
	s := refSample(t, "register.txt", "", false) // the first sample: the new id
	if got := mustRun(t, h, "vim-cmd", "solo/registervm", vmx); got != s[:strings.Index(s, "\n")+1] {
		t.Errorf("registervm = %q", got)
	}
	if _, err := h.AddVM(VMSpec{ID: 51, Name: "db", Datastore: "datastore1", Disks: []DiskSpec{{Size: 1 << 20}}}); err != nil {
		t.Fatal(err)
	}
	out, _, code := run(h, nil, "vim-cmd", "solo/registervm", "/vmfs/volumes/datastore1/db/db.vmx")
	if want := refSample(t, "register.txt", "older hosts print nothing", false); out != want || code != 1 {
		t.Errorf("registering twice: exit %d\n got %q\nwant %q", code, out, want)
	}
	out, _, code = run(h, nil, "vim-cmd", "solo/registervm", "/vmfs/volumes/datastore1/nope/nope.vmx")
	if want := refSample(t, "register.txt", "older hosts print nothing", false); code != 1 || !strings.Contains(out, "vim.fault.NotFound") ||
		!strings.Contains(out, "The object or item referred to could not be found.") || want == out {
		t.Errorf("registering a missing vmx: exit %d, %q", code, out)
	}
	if err := h.SetFaults(Faults{SlowTasks: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if got, want := mustRun(t, h, "vim-cmd", "vmsvc/get.tasklist", "51"), refSample(t, "register.txt", "no tasks", false); got != want {
		t.Errorf("empty tasklist = %q, want %q", got, want)
	}
	mustRun(t, h, "vim-cmd", "vmsvc/snapshot.create", "51", "x")
	tasks, err := esxi.ParseTaskList(mustRun(t, h, "vim-cmd", "vmsvc/get.tasklist", "51"))
	if err != nil || len(tasks) != 1 || tasks[0].Op != "createSnapshot" {
		t.Errorf("tasklist while a snapshot runs: %+v, %v", tasks, err)
	}
}

func TestEsxcliAndVersionMatchReference(t *testing.T) {
	h, err := NewHost(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct {
		name, uuid, typ string
		size, free      int64
	}{
		{"datastore1", "6896b7e6-94bc1a70-ad35-c46516f1f5b5", "VMFS-6", 127775277056, 126259036160},
		{"OSDATA-688129d7", "688129d7-e429fe4e-7e65-c46516f1f5b5", "VMFSOS", 22817013760, 21341667328},
		{"nas share", "2707af93-17b6f4d4", "NFS", 40008333393920, 12798507614208},
	} {
		if err := h.AddDatastore(d.name, DatastoreOptions{Type: d.typ, UUID: d.uuid, Capacity: d.size, Reserved: d.size - d.free}); err != nil {
			t.Fatal(err)
		}
	}
	all := strings.Split(refSample(t, "esxcli.txt", "", true), "\n")
	var want []string
	for _, l := range all {
		if !strings.HasPrefix(l, "#") {
			want = append(want, l)
		}
	}
	if got := mustRun(t, h, "esxcli", "storage", "filesystem", "list"); got != strings.Join(want, "\n") {
		t.Errorf("esxcli:\n got %q\nwant %q", got, strings.Join(want, "\n"))
	}
	if got := mustRun(t, h, "vmware", "-v"); got != refSample(t, "esxcli.txt", "vmware -v", false) {
		t.Errorf("vmware -v = %q", got)
	}
	if got := mustRun(t, h, "vmware", "-l"); got != refSample(t, "esxcli.txt", "vmware -l", false) {
		t.Errorf("vmware -l = %q", got)
	}
}

func TestVmkfstoolsOutputMatchesReference(t *testing.T) {
	h := newTestHost(t, "datastore1", "backup")
	if _, err := h.AddVM(VMSpec{Name: "web01", Datastore: "datastore1", Disks: []DiskSpec{{Size: 4 << 20, Data: []Extent{{0, 1 << 20, 9}}}}}); err != nil {
		t.Fatal(err)
	}
	var pct strings.Builder
	for i := 3; i < 100; i++ {
		pct.WriteString("\rClone: " + strconv.Itoa(i) + "% done.")
	}
	// The reference writes the carriage returns as "^M".
	want := strings.ReplaceAll(strings.Replace(refSample(t, "vmkfstools.txt", "", false), " ... ", pct.String(), 1), "^M", "\r")
	src := "/vmfs/volumes/datastore1/web01/web01.vmdk"
	if got := mustRun(t, h, "vmkfstools", "-i", src, "-d", "thin", "/vmfs/volumes/backup/web01.vmdk"); got != want {
		t.Errorf("vmkfstools:\n got %q\nwant %q", got, want)
	}
	if err := h.SetFaults(Faults{DatastoreFull: []string{"backup"}}); err != nil {
		t.Fatal(err)
	}
	out, _, code := run(h, nil, "vmkfstools", "-i", src, "-d", "thin", "/vmfs/volumes/backup/web02.vmdk")
	fail := strings.SplitAfter(refSample(t, "vmkfstools.txt", "failures", false), "\n")[0]
	if code == 0 || !strings.HasSuffix(out, fail) {
		t.Errorf("clone to a full datastore: exit %d, %q", code, out)
	}
	if err := h.Configure("7.0.3", "21930508", false, false); err != nil {
		t.Fatal(err)
	}
	out = mustRun(t, h, "vmkfstools", "-i", src, "-a", "lsilogic", "-d", "thin", "/vmfs/volumes/datastore1/web01/copy.vmdk")
	if !strings.HasPrefix(out, refSample(t, "vmkfstools.txt", "with -a ADAPTER", false)) {
		t.Errorf("with -a on 7.0: %q", out[:80])
	}
}

func TestDescriptorsMatchReference(t *testing.T) {
	if got, want := baseDescriptor("05e9aba7", 75497472, "web01-flat.vmdk", "8124c2c9cf1609f2921a6b6705e9aba7",
		"60 00 C2 90 d1 69 8c d2-f6 65 3b 98 be 64 04 5e"), refSample(t, "vmdk-descriptors.txt", "base thin disk", true); got != want {
		t.Errorf("base:\n got %q\nwant %q", got, want)
	}
	if got, want := deltaDescriptor(false, "ffffffee", "fffffffe", "sql.vmdk", 16777216, "sql-000001-delta.vmdk",
		"7dfbf361d1fbbf2082b192cffffffffe"), refSample(t, "vmdk-descriptors.txt", "vmfsSparse", true); got != want {
		t.Errorf("vmfsSparse:\n got %q\nwant %q", got, want)
	}
	if got, want := deltaDescriptor(true, "a1b2c3d4", "05e9aba7", "/vmfs/volumes/6896b7e6-94bc1a70-ad35-c46516f1f5b5/web01/web01.vmdk",
		75497472, "web01-000001-sesparse.vmdk", "1f2e3d4c5b6a79880123456789abcdef"), refSample(t, "vmdk-descriptors.txt", "seSparse", true); !strings.HasPrefix(want, got) {
		t.Errorf("seSparse:\n got %q\nwant %q", got, want)
	}
}
