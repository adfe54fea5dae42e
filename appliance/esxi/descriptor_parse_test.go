package esxi

import (
	"strings"
	"testing"
)

func TestParseDescriptorReference(t *testing.T) {
	cases := []struct {
		title, createType, hint, file, extType string
		sectors                                int64
		delta                                  bool
	}{
		{"base thin disk", "vmfs", "", "web01-flat.vmdk", "VMFS", 75497472, false},
		{"vmfsSparse snapshot delta", "vmfsSparse", "sql.vmdk", "sql-000001-delta.vmdk", "VMFSSPARSE", 16777216, true},
		{"seSparse snapshot delta", "seSparse", "/vmfs/volumes/6896b7e6-94bc1a70-ad35-c46516f1f5b5/web01/web01.vmdk", "web01-000001-sesparse.vmdk", "SESPARSE", 75497472, true},
	}
	for _, c := range cases {
		d, err := ParseDescriptor(sample(t, "vmdk-descriptors.txt", c.title, true))
		if err != nil {
			t.Errorf("%s: %v", c.title, err)
			continue
		}
		if d.CreateType != c.createType || d.ParentFileNameHint != c.hint || len(d.Extents) != 1 ||
			d.Extents[0].File != c.file || d.Extents[0].Type != c.extType || d.Size() != c.sectors*512 || d.IsDelta() != c.delta {
			t.Errorf("%s: got %+v", c.title, d)
		}
	}
	// The change-tracking fragment is not a whole descriptor.
	if _, err := ParseDescriptor(sample(t, "vmdk-descriptors.txt", "change-tracking", true)); err == nil {
		t.Error("change-tracking fragment: want an error")
	}
	crlf := strings.ReplaceAll(sample(t, "vmdk-descriptors.txt", "base thin disk", true), "\n", "\r\n")
	if d, err := ParseDescriptor(crlf); err != nil || d.Extents[0].File != "web01-flat.vmdk" {
		t.Errorf("CRLF descriptor: %+v, %v", d, err)
	}
	rdm := "# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType=\"vmfsPassthroughRawDeviceMap\"\n" +
		"RW 2097152 VMFSRDM \"db-rdmp.vmdk\"\n"
	if d, err := ParseDescriptor(rdm); err != nil || d.CreateType != "vmfsPassthroughRawDeviceMap" || d.Size() != 1<<30 {
		t.Errorf("physical RDM: %+v, %v", d, err)
	}
	for _, bad := range []string{"", "hello\n", "# Disk DescriptorFile\nversion=1\n", "\x00\x01binary"} {
		if _, err := ParseDescriptor(bad); err == nil {
			t.Errorf("ParseDescriptor(%q): want an error", bad)
		}
	}
}

func FuzzParseDescriptor(f *testing.F) {
	addSeeds(f, true, "vmdk-descriptors.txt")
	f.Fuzz(func(t *testing.T, text string) {
		d, err := ParseDescriptor(text)
		if err == nil && (len(d.Extents) == 0 || d.Size() < 0) {
			t.Fatalf("descriptor without extents or negative size from %q", text)
		}
	})
}
