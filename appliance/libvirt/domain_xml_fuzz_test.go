package libvirt

import (
	"strings"
	"testing"
)

const seedDomainXML = `<domain type='qemu'><name>web</name><uuid>0b3c1d2e-0000-4000-8000-000000000001</uuid>
<memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os><devices>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/var/lib/libvirt/images/web.qcow2'/>
<backingStore type='file'><format type='qcow2'/><source file='/base.qcow2'/></backingStore><target dev='vda' bus='virtio'/></disk>
<disk type='file' device='cdrom'><source file='/iso/x.iso'/><target dev='hdc' bus='ide'/></disk>
<disk type='network' device='disk'><source protocol='nbd' name='x'/><target dev='vdb' bus='virtio'/></disk>
<interface type='network'><mac address='52:54:00:01:02:03'/><source network='default'/></interface>
</devices></domain>`

// The disks of a domain XML: file disks kept, cdroms ignored, network disks reported skipped;
// the restore rewrite renames, points the disk at its new file and changes MAC and UUID.
func TestDomainXML(t *testing.T) {
	_, disks, skipped, err := domainDisks(seedDomainXML)
	if err != nil {
		t.Fatal(err)
	}
	if len(disks) != 1 || disks[0] != (diskSpec{Target: "vda", Bus: "virtio", Path: "/var/lib/libvirt/images/web.qcow2", Format: "qcow2"}) {
		t.Fatalf("disks %+v", disks)
	}
	if len(skipped) != 1 || skipped[0] != "vdb" {
		t.Fatalf("skipped %v", skipped)
	}
	out, err := rewriteForRestore(seedDomainXML, "web2", map[string]string{"vda": "/restore/web2-vda.raw"}, "raw", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"0b3c1d2e", "52:54:00:01:02:03", "/base.qcow2", "web.qcow2", `protocol="nbd"`} {
		if strings.Contains(out, gone) {
			t.Fatalf("rewritten XML still has %q:\n%s", gone, out)
		}
	}
	for _, want := range []string{"<name>web2</name>", "/restore/web2-vda.raw", `type="raw"`, "/iso/x.iso"} {
		if !strings.Contains(out, want) {
			t.Fatalf("rewritten XML lacks %q:\n%s", want, out)
		}
	}
}

// FuzzDomainXML: domain XML comes back from a repository at restore; parsing and rewriting it
// never panic, and a rewrite parses again with the new name.
func FuzzDomainXML(f *testing.F) {
	f.Add(seedDomainXML)
	f.Add(`<domain><devices><disk><target dev='vda'/></disk></devices></domain>`)
	f.Add(`<domain`)
	f.Fuzz(func(t *testing.T, doc string) {
		_, disks, _, err := domainDisks(doc)
		if err != nil {
			return
		}
		paths := map[string]string{}
		for _, d := range disks {
			paths[d.Target] = "/r/" + d.Target
		}
		out, err := rewriteForRestore(doc, "restored", paths, "qcow2", false)
		if err != nil {
			return
		}
		dom, _, _, err := domainDisks(out)
		if err != nil {
			t.Fatalf("rewritten XML does not parse: %v\n%s", err, out)
		}
		if got := dom.child("name").text(); got != "restored" {
			t.Fatalf("name %q", got)
		}
	})
}

// FuzzXMLTree: whatever parses writes back to a document that parses to the same text, so an
// edit-and-write of a domain XML never changes what it did not touch.
func FuzzXMLTree(f *testing.F) {
	f.Add(seedDomainXML)
	f.Add(`<domain xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><qemu:commandline><qemu:arg value='-S'/></qemu:commandline><!-- c --></domain>`)
	f.Add(`<a b="&lt;&amp;&quot;">x&gt;<![CDATA[<y>]]></a>`)
	f.Fuzz(func(t *testing.T, doc string) {
		n, err := parseXML(doc)
		if err != nil {
			return
		}
		out := n.String()
		n2, err := parseXML(out)
		if err != nil {
			t.Fatalf("written XML does not parse: %v\n%s", err, out)
		}
		if again := n2.String(); again != out {
			t.Fatalf("not stable:\n%s\n%s", out, again)
		}
	})
}

// Namespaced metadata survives a restore rewrite as written.
func TestXMLTreeKeepsNamespaces(t *testing.T) {
	doc := `<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><name>a</name><devices/><qemu:commandline><qemu:arg value='-S'/></qemu:commandline></domain>`
	out, err := rewriteForRestore(doc, "b", nil, "qcow2", true)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`xmlns:qemu="http://libvirt.org/schemas/domain/qemu/1.0"`, `<qemu:commandline><qemu:arg value="-S"/></qemu:commandline>`, "<name>b</name>"} {
		if !strings.Contains(out, want) {
			t.Fatalf("rewritten XML lacks %s:\n%s", want, out)
		}
	}
}
