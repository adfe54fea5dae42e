package esxi

import (
	"reflect"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/appliance"
)

func TestParseGetAllVMsReference(t *testing.T) {
	cases := []struct {
		title string
		want  []appliance.VM
	}{
		{"sample 1", []appliance.VM{
			{ID: "3", Name: "CentosTest", Datastore: "LocalDatastore_001", VMXPath: "[LocalDatastore_001] CentosTest/CentosTest.vmx", GuestOS: "otherLinuxGuest", Version: "vmx-10"},
		}},
		{"sample 2", []appliance.VM{
			{ID: "1424", Name: "sap-router", Datastore: "datastore1 (4)", VMXPath: "[datastore1 (4)] sap-router/win2k8x64.vmx", GuestOS: "winLonghorn64Guest", Version: "vmx-07"},
			{ID: "1440", Name: "RAS-3.250", Datastore: "datastore1 (4)", VMXPath: "[datastore1 (4)] RAS/win2k8x64.vmx", GuestOS: "winLonghorn64Guest", Version: "vmx-07"},
			{ID: "496", Name: "vm-ark-mcnc-9 (nonpersistent: vmwarewinxp-base234-v12)", Datastore: "nfs-datastore", VMXPath: "[nfs-datastore] vm-ark-mcnc-9_234-v12/vm-ark-mcnc-9_234-v12.vmx", GuestOS: "winXPProGuest", Version: "vmx-04"},
		}},
		{"sample 3", []appliance.VM{
			{ID: "7", Name: "web 01", Datastore: "datastore1", VMXPath: "[datastore1] web 01/web 01.vmx", GuestOS: "ubuntu64Guest", Version: "vmx-19", Annotation: "Front end.\nOwner: ops team"},
			{ID: "8", Name: "db01", Datastore: "ssd store", VMXPath: "[ssd store] db01/db01.vmx", GuestOS: "debian11_64Guest", Version: "vmx-19"},
		}},
		{"sample 4", nil},
	}
	for _, c := range cases {
		got, warn, err := ParseGetAllVMs(sample(t, "getallvms.txt", c.title, false))
		if err != nil {
			t.Errorf("%s: %v", c.title, err)
			continue
		}
		if len(warn) != 0 {
			t.Errorf("%s: unexpected warnings %q", c.title, warn)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.title, got, c.want)
		}
	}
}

func TestParseGetAllVMsEdgeCases(t *testing.T) {
	const header = "Vmid   Name   File   Guest OS   Version   Annotation\n"
	got, warn, err := ParseGetAllVMs(header +
		"Skipping invalid VM '12'\n" +
		"21     db [prod] (2)   [nas share (old)] db [prod] (2)/db.vmx   debian11_64Guest   vmx-19   2024 notes\n" +
		"\n" +
		"second para\n" +
		"22     tmpl   [datastore1] tmpl/tmpl.vmtx   debian11_64Guest   vmx-19\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(warn) != 1 || !strings.Contains(warn[0], "'12'") {
		t.Errorf("warnings = %q, want the skipped VM", warn)
	}
	want := appliance.VM{ID: "21", Name: "db [prod] (2)", Datastore: "nas share (old)", VMXPath: "[nas share (old)] db [prod] (2)/db.vmx",
		GuestOS: "debian11_64Guest", Version: "vmx-19", Annotation: "2024 notes\n\nsecond para"}
	if len(got) != 2 || got[0] != want || got[1].VMXPath != "[datastore1] tmpl/tmpl.vmtx" {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	for _, bad := range []string{"", "\n\n", "hello world\n", header + "garbage line\n"} {
		if _, _, err := ParseGetAllVMs(bad); err == nil {
			t.Errorf("ParseGetAllVMs(%q): want an error", bad)
		}
	}
}

func FuzzParseGetAllVMs(f *testing.F) {
	addSeeds(f, false, "getallvms.txt")
	f.Fuzz(func(t *testing.T, out string) {
		vms, _, err := ParseGetAllVMs(out)
		if err != nil {
			return
		}
		for _, vm := range vms {
			ds, _, perr := ParseDatastorePath(vm.VMXPath)
			if vm.ID == "" || perr != nil || ds != vm.Datastore || !strings.HasPrefix(vm.Version, "vmx-") {
				t.Fatalf("inconsistent row %+v from %q", vm, out)
			}
		}
	})
}
