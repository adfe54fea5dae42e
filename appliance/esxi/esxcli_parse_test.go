package esxi

import (
	"reflect"
	"testing"

	"github.com/snapferry/snapferry/appliance"
)

func TestParseFilesystemListReference(t *testing.T) {
	got, err := ParseFilesystemList(samples(t, "esxcli.txt", false)[0].Body)
	if err != nil {
		t.Fatal(err)
	}
	want := []appliance.Datastore{
		{Name: "datastore1", UUID: "6896b7e6-94bc1a70-ad35-c46516f1f5b5", MountPath: "/vmfs/volumes/6896b7e6-94bc1a70-ad35-c46516f1f5b5", Type: "VMFS-6", Mounted: true, Size: 127775277056, Free: 126259036160},
		{Name: "OSDATA-688129d7", UUID: "688129d7-e429fe4e-7e65-c46516f1f5b5", MountPath: "/vmfs/volumes/688129d7-e429fe4e-7e65-c46516f1f5b5", Type: "VMFSOS", Mounted: true, Size: 22817013760, Free: 21341667328},
		{Name: "nas share", UUID: "2707af93-17b6f4d4", MountPath: "/vmfs/volumes/2707af93-17b6f4d4", Type: "NFS", Mounted: true, Size: 40008333393920, Free: 12798507614208},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	// An empty volume name (allowed) leaves only the blanks between mount point and UUID.
	empty := "Mount Point   Volume Name  UUID  Mounted  Type  Size  Free\n---  ---  ---  ---  ---  ---  ---\n" +
		"/vmfs/volumes/5a-6b                 5a-6b     false  vfat  4293591040  4269867008\n"
	got, err = ParseFilesystemList(empty)
	if err != nil || len(got) != 1 || got[0].Name != "" || got[0].Mounted || got[0].Type != "vfat" {
		t.Errorf("empty name: %+v, %v", got, err)
	}
	for _, bad := range []string{"", "Mount Point\n", "Mount Point\n---\n/vmfs/volumes/x ds uuid true VMFS-6 12 x\n", "Mount Point\n---\n/a b c\n"} {
		if _, err := ParseFilesystemList(bad); err == nil {
			t.Errorf("ParseFilesystemList(%q): want an error", bad)
		}
	}
}

func TestParseVersionReference(t *testing.T) {
	got, err := ParseVersion(sample(t, "esxcli.txt", "vmware -v", false))
	if err != nil || got != (Version{Product: "VMware ESXi", Version: "6.5.0", Build: "10719125"}) {
		t.Errorf("got %+v, %v", got, err)
	}
	if _, err := ParseVersion(sample(t, "esxcli.txt", "vmware -l", false)); err == nil {
		t.Error("vmware -l output has no build: want an error")
	}
}

func FuzzParseFilesystemList(f *testing.F) {
	addSeeds(f, false, "esxcli.txt")
	f.Fuzz(func(t *testing.T, out string) {
		dss, err := ParseFilesystemList(out)
		if err == nil {
			for _, d := range dss {
				if d.MountPath == "" || d.UUID == "" || d.Type == "" {
					t.Fatalf("incomplete datastore %+v from %q", d, out)
				}
			}
		}
		_, _ = ParseVersion(out)
	})
}
