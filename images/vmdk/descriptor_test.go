package vmdk

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseReferenceSamples(t *testing.T) {
	cases := []struct {
		file       string
		version    int
		cid, pcid  uint32
		createType string
		hint, ctk  string
		extent     Extent
		ddb        map[string]string
		flatErr    string
	}{
		{file: "web01.vmdk", version: 1, cid: 0x05e9aba7, pcid: NoParentCID, createType: "vmfs",
			extent: Extent{"RW", 75497472, "VMFS", "web01-flat.vmdk", 0},
			ddb: map[string]string{"ddb.geometry.cylinders": "4699", "ddb.thinProvisioned": "1", "ddb.adapterType": "lsilogic",
				"ddb.uuid": "60 00 C2 90 d1 69 8c d2-f6 65 3b 98 be 64 04 5e"}},
		{file: "web01-crlf.vmdk", version: 1, cid: 0x05e9aba7, pcid: NoParentCID, createType: "vmfs",
			extent: Extent{"RW", 75497472, "VMFS", "web01-flat.vmdk", 0},
			ddb:    map[string]string{"ddb.virtualHWVersion": "19"}},
		{file: "web01-v3-ctk.vmdk", version: 3, cid: 0x05e9aba7, pcid: NoParentCID, createType: "vmfs", ctk: "web01-ctk.vmdk",
			extent: Extent{"RW", 75497472, "VMFS", "web01-flat.vmdk", 0}},
		{file: "sql-000001.vmdk", version: 1, cid: 0xffffffee, pcid: 0xfffffffe, createType: "vmfsSparse", hint: "sql.vmdk",
			extent:  Extent{"RW", 16777216, "VMFSSPARSE", "sql-000001-delta.vmdk", 0},
			ddb:     map[string]string{"ddb.longContentID": "7dfbf361d1fbbf2082b192cffffffffe"},
			flatErr: "snapshot-delta"},
		{file: "web01-000001.vmdk", version: 1, cid: 0xa1b2c3d4, pcid: 0x05e9aba7, createType: "seSparse",
			hint:    "/vmfs/volumes/6896b7e6-94bc1a70-ad35-c46516f1f5b5/web01/web01.vmdk",
			extent:  Extent{"RW", 75497472, "SESPARSE", "web01-000001-sesparse.vmdk", 0},
			ddb:     map[string]string{"ddb.grain": "8"},
			flatErr: "snapshot-delta"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			raw := readTestdata(t, c.file)
			d, err := Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if d.Version != c.version || d.CID != c.cid || d.ParentCID != c.pcid || d.CreateType != c.createType ||
				d.ParentFileNameHint != c.hint || d.ChangeTrackPath != c.ctk {
				t.Fatalf("header: version %d CID %08x parentCID %08x createType %q hint %q ctk %q",
					d.Version, d.CID, d.ParentCID, d.CreateType, d.ParentFileNameHint, d.ChangeTrackPath)
			}
			if len(d.Extents) != 1 || d.Extents[0] != c.extent {
				t.Fatalf("extents %+v, want %+v", d.Extents, c.extent)
			}
			if d.Size() != c.extent.Sectors*512 {
				t.Fatalf("size %d", d.Size())
			}
			for k, v := range c.ddb {
				if d.DDB[k] != v {
					t.Errorf("%s = %q, want %q", k, d.DDB[k], v)
				}
			}
			if !bytes.Equal(d.Bytes(), raw) {
				t.Errorf("Bytes() does not reproduce the file:\n%q\nwant\n%q", d.Bytes(), raw)
			}
			_, err = d.FlatExtent()
			if c.flatErr == "" && err != nil {
				t.Fatalf("FlatExtent: %v", err)
			}
			if c.flatErr != "" && (err == nil || !strings.Contains(err.Error(), c.flatErr)) {
				t.Fatalf("FlatExtent: err %v, want one containing %q", err, c.flatErr)
			}
		})
	}
}

func TestParseExtentForms(t *testing.T) {
	text := "# Disk DescriptorFile\nversion=1\ncreateType=\"twoGbMaxExtentFlat\"\n" +
		"RW 4192256 FLAT \"my disk-f001.vmdk\" 0\n" +
		"RDONLY 2048 FLAT \"/abs/path/x-f002.vmdk\" 128\n" +
		"NOACCESS 100 ZERO\n" +
		"  ddb.adapterType   =   lsilogic  \n"
	d, err := Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	want := []Extent{{"RW", 4192256, "FLAT", "my disk-f001.vmdk", 0}, {"RDONLY", 2048, "FLAT", "/abs/path/x-f002.vmdk", 128}, {"NOACCESS", 100, "ZERO", "", 0}}
	if len(d.Extents) != 3 {
		t.Fatalf("extents %+v", d.Extents)
	}
	for i := range want {
		if d.Extents[i] != want[i] {
			t.Errorf("extent %d %+v, want %+v", i, d.Extents[i], want[i])
		}
		if back, err := parseExtent(want[i].String()); err != nil || back != want[i] {
			t.Errorf("extent %d does not survive String(): %q -> %+v, %v", i, want[i].String(), back, err)
		}
	}
	if d.DDB["ddb.adapterType"] != "lsilogic" {
		t.Errorf("bare ddb value %q", d.DDB["ddb.adapterType"])
	}
	if d.Size() != (4192256+2048+100)*512 {
		t.Errorf("size %d", d.Size())
	}
	if _, err := d.FlatExtent(); err == nil || !strings.Contains(err.Error(), "3 extents") {
		t.Errorf("multi-extent FlatExtent: %v", err)
	}
	if p, err := ExtentPath("/vmfs/volumes/ds1/vm/x.vmdk", d.Extents[0]); err != nil || p != "/vmfs/volumes/ds1/vm/my disk-f001.vmdk" {
		t.Errorf("relative extent path %q, %v", p, err)
	}
	if p, err := ExtentPath("/vmfs/volumes/ds1/vm/x.vmdk", d.Extents[1]); !errors.Is(err, ErrExtentOutside) {
		t.Errorf("absolute extent path outside the VM's folder: %q, %v", p, err)
	}
	if p, err := ExtentPath("/abs/path/x.vmdk", d.Extents[1]); err != nil || p != "/abs/path/x-f002.vmdk" {
		t.Errorf("absolute extent path in the VM's folder %q, %v", p, err)
	}
}

func TestParseRejects(t *testing.T) {
	cases := map[string]string{
		"hosted sparse": "KDMV\x01\x00\x00\x00",
		"flat extent":   "\x00\x00\x00\x00\xeb\x63\x90",
		"random text":   "hello world\nthis is not a disk\n",
		"bad sectors":   "version=1\nRW lots VMFS \"x-flat.vmdk\"\n",
		"open quote":    "version=1\nRW 10 VMFS \"x-flat.vmdk\n",
		"bare name":     "version=1\nRW 10 VMFS x-flat.vmdk\n",
		"bad CID":       "version=1\nCID=xyz\n",
		"bad version":   "version=one\n",
		"negative":      "version=1\nRW -5 VMFS \"x\"\n",
		"short extent":  "version=1\nRW 10\n",
	}
	for name, text := range cases {
		if _, err := Parse([]byte(text)); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
	if _, err := Parse([]byte("KDMV")); !errors.Is(err, ErrNotDescriptor) {
		t.Errorf("sparse VMDK: err %v, want ErrNotDescriptor", err)
	}
}

func TestFlatExtentRefusesRDM(t *testing.T) {
	for _, ct := range []string{"vmfsPassthroughRawDeviceMap", "vmfsRawDeviceMap"} {
		d, err := Parse([]byte("version=1\ncreateType=\"" + ct + "\"\nRW 2147483648 VMFSRDM \"rdm1-rdmp.vmdk\"\n"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.FlatExtent(); err == nil || !strings.Contains(err.Error(), "raw device") {
			t.Errorf("%s: FlatExtent err %v", ct, err)
		}
	}
}

func TestForRestore(t *testing.T) {
	for _, file := range []string{"web01.vmdk", "web01-crlf.vmdk", "web01-v3-ctk.vmdk"} {
		raw := readTestdata(t, file)
		d, err := Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		out, err := d.ForRestore("restored-flat.vmdk", 0x12345678)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Parse(out)
		if err != nil {
			t.Fatalf("%s: rewritten descriptor does not parse: %v\n%s", file, err, out)
		}
		if r.CID != 0x12345678 || r.ParentCID != NoParentCID || r.ParentFileNameHint != "" || r.ChangeTrackPath != "" {
			t.Errorf("%s: CID %08x parentCID %08x hint %q ctk %q", file, r.CID, r.ParentCID, r.ParentFileNameHint, r.ChangeTrackPath)
		}
		if r.Extents[0] != (Extent{"RW", 75497472, "VMFS", "restored-flat.vmdk", 0}) {
			t.Errorf("%s: extent %+v", file, r.Extents[0])
		}
		if r.DDB["ddb.longContentID"] != "8124c2c9cf1609f2921a6b6712345678" {
			t.Errorf("%s: longContentID %q", file, r.DDB["ddb.longContentID"])
		}
		for k, v := range d.DDB {
			if k != "ddb.longContentID" && r.DDB[k] != v {
				t.Errorf("%s: %s = %q, want %q kept", file, k, r.DDB[k], v)
			}
		}
		if r.crlf != d.crlf || !strings.Contains(string(out), "# The Disk Data Base") {
			t.Errorf("%s: line ends or comments not kept", file)
		}
		if _, err := d.ForRestore("bad\"name", 1); err == nil {
			t.Errorf("%s: quote in extent name accepted", file)
		}
	}
	sparse, _ := Parse(readTestdata(t, "sql-000001.vmdk"))
	if _, err := sparse.ForRestore("x-flat.vmdk", 1); err == nil {
		t.Error("ForRestore of a delta disk accepted")
	}
}

// FuzzParse checks that Parse never panics, and that whatever it accepts survives Bytes and
// a second Parse unchanged. The reference samples are the seeds; `go test` runs them.
func FuzzParse(f *testing.F) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".vmdk") {
			f.Add(readTestdata(f, e.Name()))
		}
	}
	f.Add([]byte("version=1\nRW 10 FLAT \"a b\" 7\nNOACCESS 3 ZERO\n"))
	f.Add([]byte("version=1\ncreateType=\"vmfs\"\nRW 8 VMFS \"../../../../etc/shadow\"\n"))
	f.Add([]byte("version=1\ncreateType=\"vmfs\"\nRW 8 VMFS \"/etc/shadow\"\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Parse(b)
		if err != nil {
			return
		}
		if d.Size() < 0 {
			t.Fatalf("negative size %d", d.Size())
		}
		d2, err := Parse(d.Bytes())
		if err != nil {
			t.Fatalf("re-parse of Bytes(): %v", err)
		}
		if d2.CID != d.CID || d2.Version != d.Version || len(d2.Extents) != len(d.Extents) || d2.Size() != d.Size() {
			t.Fatalf("re-parse differs: %+v vs %+v", d2, d)
		}
		// Whatever an extent names, it resolves inside the descriptor's folder or is refused.
		// The folder does not exist, so this stays lexical and touches no file.
		const vmDir = "/nonexistent-snapferry-fuzz/ds/vm"
		for _, e := range d.Extents {
			p, err := ExtentPath(vmDir+"/x.vmdk", e)
			if err == nil && !within(vmDir, p) {
				t.Fatalf("extent %q resolved to %s, outside %s", e.File, p, vmDir)
			}
		}
		if out, err := d.ForRestore("x-flat.vmdk", 42); err == nil {
			if _, err := Parse(out); err != nil {
				t.Fatalf("ForRestore output does not parse: %v\n%q", err, out)
			}
		}
	})
}
