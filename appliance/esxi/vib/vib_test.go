package vib

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func testPackage() Package {
	return Package{
		Name: "snapferry", Vendor: "snapferry", Version: "1.2.3-1.4.0", Summary: "backups",
		Description: "test build", URL: "https://example.invalid/snapferry",
		ReleaseDate: time.Date(2026, 12, 6, 21, 0, 0, 0, time.UTC),
		Files: []File{
			{Path: "opt/snapferry/snapferry", Mode: 0o755, Data: []byte("\x7fELF pretend binary, odd length")},
			{Path: "opt/snapferry/snapferry-smtp.xml", Mode: 0o644, Data: []byte("<ConfigRoot/>\n")},
		},
	}
}

func TestBuildReadRoundTrip(t *testing.T) {
	b, err := Build(testPackage())
	if err != nil {
		t.Fatal(err)
	}
	v, err := Read(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(v.Members, ","); got != "descriptor.xml,sig.pkcs7,payload1" {
		t.Errorf("members %s", got)
	}
	d := v.Descriptor
	if d.Name != "snapferry" || d.Version != "1.2.3-1.4.0" || d.AcceptanceLevel != "community" || d.Type != "bootbank" ||
		d.ReleaseDate != "2026-12-06T21:00:00" || d.ID() != "snapferry_bootbank_snapferry_1.2.3-1.4.0" {
		t.Errorf("descriptor %+v", d)
	}
	for _, want := range [][2]string{{"sha-256", ""}, {"sha-256", "gunzip"}, {"sha-1", "gunzip"}} {
		if _, ok := d.Payloads[0].Checksum(want[0], want[1]); !ok {
			t.Errorf("no %s/%s checksum", want[0], want[1])
		}
	}
	for _, f := range testPackage().Files {
		g, ok := v.Files[f.Path]
		if !ok || !bytes.Equal(g.Data, f.Data) || g.Mode != f.Mode {
			t.Errorf("file %s: got %+v", f.Path, g)
		}
	}
	// Reproducible: the same package gives the same bytes.
	again, err := Build(testPackage())
	if err != nil || !bytes.Equal(b, again) {
		t.Fatalf("second build differs (err %v)", err)
	}
	// A different release date changes the tar mtimes, and so the bytes.
	p := testPackage()
	p.ReleaseDate = p.ReleaseDate.Add(time.Second)
	if other, _ := Build(p); bytes.Equal(b, other) {
		t.Error("release date does not reach the payload")
	}
}

// Every way a VIB can be damaged is refused with ErrFormat and a message naming what is wrong.
func TestReadRefusesDamage(t *testing.T) {
	good, err := Build(testPackage())
	if err != nil {
		t.Fatal(err)
	}
	members, err := readAr(good)
	if err != nil {
		t.Fatal(err)
	}
	rebuild := func(t *testing.T, edit func([]arMember) []arMember) []byte {
		t.Helper()
		ms := make([]arMember, len(members))
		for i, m := range members {
			ms[i] = arMember{m.name, bytes.Clone(m.data)}
		}
		b, err := writeAr(edit(ms))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name, want string
		b          []byte
	}{
		{"not ar", "not an ar archive", []byte("PK\x03\x04")},
		{"cut short", "does not fit", good[:len(good)-100]},
		{"order", "want descriptor.xml, sig.pkcs7", rebuild(t, func(m []arMember) []arMember { m[0], m[1] = m[1], m[0]; return m })},
		{"payload byte flipped", "checksum", rebuild(t, func(m []arMember) []arMember { m[2].data[len(m[2].data)/2] ^= 1; return m })},
		{"size wrong", "descriptor size", rebuild(t, func(m []arMember) []arMember {
			m[0].data = bytes.Replace(m[0].data, []byte(`size="`), []byte(`size="1`), 1)
			return m
		})},
		{"file list wrong", "file-list", rebuild(t, func(m []arMember) []arMember {
			m[0].data = bytes.Replace(m[0].data, []byte("snapferry-smtp.xml"), []byte("other.xml"), 1)
			return m
		})},
		{"bad xml", "descriptor.xml", rebuild(t, func(m []arMember) []arMember { m[0].data = []byte("<vib><name>"); return m })},
		{"payload missing", "payload", rebuild(t, func(m []arMember) []arMember { return m[:2] })},
	}
	for _, c := range cases {
		_, err := Read(c.b)
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want ErrFormat mentioning %q", c.name, err, c.want)
		}
	}
}

func TestBuildRefusesBadInput(t *testing.T) {
	for name, edit := range map[string]func(*Package){
		"version":      func(p *Package) { p.Version = "1.2.3" },
		"escape":       func(p *Package) { p.Files[0].Path = "../etc/passwd" },
		"absolute":     func(p *Package) { p.Files[0].Path = "/opt/x" },
		"twice":        func(p *Package) { p.Files[1].Path = p.Files[0].Path },
		"payload name": func(p *Package) { p.PayloadName = "payload12" },
		"no files":     func(p *Package) { p.Files = nil },
	} {
		p := testPackage()
		edit(&p)
		if _, err := Build(p); err == nil {
			t.Errorf("%s: built anyway", name)
		}
	}
}

func TestCompareOrdersLikeESXi(t *testing.T) {
	ordered := []string{"0.0.0-0.9.0", "0.0.0-0.10.0", "1.2.3-1.0.0", "1.2.3-1.0.1", "1.2.3-1.4.0", "1.2.3-1.12.0",
		"1.2.10-1.0.0", "1.10.0-1.0.0", "2.0.0-1.0.0", "2.0.0.1-1.0.0"}
	for i := range ordered {
		for j := range ordered {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := Compare(ordered[i], ordered[j]); got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
}

func TestVersionFromDescribe(t *testing.T) {
	cases := []struct {
		describe string
		commits  int
		want     string
	}{
		{"v1.2.3", -1, "1.2.3-1.0.0"},
		{"1.2.3", -1, "1.2.3-1.0.0"},
		{"v1.2.3-4-gabc1234", -1, "1.2.3-1.4.0"},
		{"v1.2.3-4-gabc1234-dirty", -1, "1.2.3-1.4.1"},
		{"v1.2.3-dirty", -1, "1.2.3-1.0.1"},
		{"32d37d2", 412, "0.0.0-0.412.0"},
		{"32d37d2-dirty", 412, "0.0.0-0.412.1"},
		{"dev", 0, "0.0.0-0.0.0"},
	}
	for _, c := range cases {
		got, err := VersionFromDescribe(c.describe, c.commits)
		if err != nil || got != c.want {
			t.Errorf("%q: got %q, %v; want %q", c.describe, got, err, c.want)
		}
	}
	for _, bad := range []string{"v1.2.3-rc1", "release-x", ""} {
		if v, err := VersionFromDescribe(bad, 3); err == nil {
			t.Errorf("%q accepted as %q", bad, v)
		}
	}
	if _, err := VersionFromDescribe("32d37d2", -1); err == nil {
		t.Error("a bare hash without a commit count was accepted")
	}
	// Every later describe of the same history orders later.
	seq := []string{"5abcdef", "v1.0.0", "v1.0.0-1-g1111111", "v1.0.0-1-g1111111-dirty", "v1.0.0-12-g2222222", "v1.0.1", "v1.1.0-3-g3333333"}
	prev := ""
	for _, d := range seq {
		v, err := VersionFromDescribe(d, 7)
		if err != nil {
			t.Fatal(err)
		}
		if prev != "" && Compare(prev, v) >= 0 {
			t.Errorf("%s (%s) does not order after %s", d, v, prev)
		}
		prev = v
	}
}

func FuzzRead(f *testing.F) {
	good, err := Build(testPackage())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("!<arch>\n"))
	f.Add(good[:200])
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Read(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error without ErrFormat: %v", err)
			}
			return
		}
		if len(v.Files) != len(v.Descriptor.Files) {
			t.Fatalf("accepted a VIB whose files differ from its file list")
		}
	})
}
