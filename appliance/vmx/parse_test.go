package vmx

import (
	"reflect"
	"testing"
)

func TestVMXDisksReference(t *testing.T) {
	vmx, err := Parse(samples(t, "vmx.txt", false)[0].Body)
	if err != nil {
		t.Fatal(err)
	}
	if vmx.Value("displayName") != "web 01" || vmx.Value("DISPLAYNAME") != "web 01" || vmx.Value("nvram") != "web 01.nvram" {
		t.Errorf("values: displayName %q nvram %q", vmx.Value("displayName"), vmx.Value("nvram"))
	}
	want := []Disk{
		{Device: "scsi0:0", FileName: "web 01.vmdk", DeviceType: "scsi-hardDisk"},
		{Device: "scsi0:1", FileName: "/vmfs/volumes/ssd store/web 01/web 01_1.vmdk", DeviceType: "scsi-hardDisk"},
		{Device: "scsi0:2", FileName: "web 01_2.vmdk", DeviceType: "scsi-hardDisk", Mode: "independent-persistent"},
	}
	got := vmx.Disks()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("disks:\n got %+v\nwant %+v", got, want)
	}
	if got[0].Independent() || !got[2].Independent() {
		t.Error("Independent() wrong")
	}
}

func TestVMXDiskRules(t *testing.T) {
	text := `ide0:0.present = "TRUE"
ide0:0.fileName = "old.vmdk"
sata1.present = "FALSE"
sata1:0.present = "TRUE"
sata1:0.fileName = "hidden.vmdk"
nvme0.present = "TRUE"
nvme0:3.present = "true"
NVME0:3.FILENAME = "n.VMDK"
scsi0:5.present = "FALSE"
scsi0:5.fileName = "absent.vmdk"
scsi1:0.present = "TRUE"
scsi1:0.deviceType = "scsi-passthru"
scsi1:0.fileName = "tape.vmdk"
scsi1:1.present = "TRUE"
scsi1:1.deviceType = "rawDisk"
scsi1:1.fileName = "rdm.vmdk"
`
	vmx, err := Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	var devs []string
	for _, d := range vmx.Disks() {
		devs = append(devs, d.Device+"="+d.FileName)
	}
	want := []string{"ide0:0=old.vmdk", "nvme0:3=n.VMDK", "scsi1:1=rdm.vmdk"}
	if !reflect.DeepEqual(devs, want) {
		t.Errorf("disks = %q, want %q", devs, want)
	}
}

func TestVMXValueCoding(t *testing.T) {
	for _, s := range []string{"plain", `say "hi"`, "a|b", "#1 server", "tab\there", "", "ünï"} {
		v, err := Parse("k = " + EncodeValue(s) + "\n")
		if err != nil || v.Value("k") != s {
			t.Errorf("round trip %q: got %q, %v", s, v.Value("k"), err)
		}
	}
	for _, bad := range []string{"novalue\n", "= \"x\"\n", "a b = \"c\"\n", "k = \"open\n"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q): want an error", bad)
		}
	}
}

func TestParseVMSD(t *testing.T) {
	text := `.encoding = "UTF-8"
snapshot.lastUID = "2"
snapshot.current = "2"
snapshot0.uid = "1"
snapshot0.filename = "web-Snapshot1.vmsn"
snapshot0.displayName = "before upgrade"
snapshot0.numDisks = "1"
snapshot0.disk0.fileName = "web.vmdk"
snapshot0.disk0.node = "scsi0:0"
snapshot1.uid = "2"
snapshot1.parent = "1"
snapshot1.displayName = "snapferry-j1"
snapshot1.description = "line one|0Aline two"
snapshot1.numDisks = "1"
snapshot1.disk0.fileName = "web-000001.vmdk"
snapshot1.disk0.node = "scsi0:0"
snapshot.numSnapshots = "2"
`
	got, err := ParseVMSD(text)
	if err != nil {
		t.Fatal(err)
	}
	want := &VMSD{Current: "2", Snapshots: []VMSDSnapshot{
		{UID: "1", Name: "before upgrade", Disks: map[string]string{"scsi0:0": "web.vmdk"}},
		{UID: "2", Parent: "1", Name: "snapferry-j1", Description: "line one\nline two", Disks: map[string]string{"scsi0:0": "web-000001.vmdk"}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if empty, err := ParseVMSD(""); err != nil || len(empty.Snapshots) != 0 {
		t.Errorf("empty vmsd: %+v, %v", empty, err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range samples(f, "vmx.txt", false) {
		f.Add(s.Body)
	}
	f.Fuzz(func(t *testing.T, text string) {
		v, err := Parse(text)
		if err != nil {
			return
		}
		for _, d := range v.Disks() {
			if !diskDeviceRe.MatchString(d.Device) {
				t.Fatalf("disk device %q from %q", d.Device, text)
			}
		}
		for _, k := range v.Keys {
			val := v.Value(k)
			back, err := Parse("k = " + EncodeValue(val) + "\n")
			if err != nil || back.Value("k") != val {
				t.Fatalf("value %q does not survive encoding: %q, %v", val, back.Value("k"), err)
			}
		}
		_, _ = ParseVMSD(text)
	})
}
