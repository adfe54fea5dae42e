package libvirt

import (
	"crypto/rand"
	"fmt"
	"path/filepath"
	"strings"
)

// maxDomainXML bounds a domain definition read back from a repository (a few KiB normally).
const maxDomainXML = 4 << 20

// diskSpec is one backed-up disk of a domain as its XML describes it.
type diskSpec struct {
	Target string // "vda"
	Bus    string // "virtio"
	Path   string // the source file or block device
	Format string // driver type: qcow2, raw
}

// domainDisks parses a domain XML and returns its disks (device='disk' with a file or block
// source; cdroms, floppies and network disks are left out and named in skipped).
func domainDisks(doc string) (dom *xnode, disks []diskSpec, skipped []string, err error) {
	dom, err = parseXML(doc)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("domain XML: %w", err)
	}
	if dom.name != "domain" {
		return nil, nil, nil, fmt.Errorf("domain XML: root element is <%s>, not <domain>", dom.name)
	}
	devices := dom.child("devices")
	if devices == nil {
		return dom, nil, nil, nil
	}
	for _, d := range devices.children("disk") {
		target := d.child("target")
		dev := target.attr("dev")
		if dev == "" {
			continue
		}
		if kind := d.attr("device"); kind != "" && kind != "disk" {
			continue
		}
		s := diskSpec{Target: dev, Bus: target.attr("bus"), Format: "raw"}
		if t := d.child("driver").attr("type"); t != "" {
			s.Format = t
		}
		src := d.child("source")
		switch d.attr("type") {
		case "file", "":
			s.Path = src.attr("file")
		case "block":
			s.Path = src.attr("dev")
		}
		if s.Path == "" {
			skipped = append(skipped, dev)
			continue
		}
		disks = append(disks, s)
	}
	return dom, disks, skipped, nil
}

// rewriteForRestore turns a backed-up domain XML into the definition of the restored domain:
// the new name, and unless keepIdentity (the domain restored as itself) a new UUID (libvirt
// makes one) and new MAC addresses; each backed-up disk (by target) at its new path and format.
// Disks not in paths are removed: their data is not in the snapshot. Backing-store elements of
// the old disks are dropped.
func rewriteForRestore(doc, name string, paths map[string]string, format string, keepIdentity bool) (string, error) {
	dom, _, _, err := domainDisks(doc)
	if err != nil {
		return "", err
	}
	dom.ensure("name").setText(name)
	dom.delAttr("id")
	if !keepIdentity {
		dom.remove(func(c *xnode) bool { return c.name == "uuid" })
	}
	devices := dom.child("devices")
	if devices == nil {
		return dom.String(), nil
	}
	devices.remove(func(d *xnode) bool {
		if d.name != "disk" {
			return false
		}
		if kind := d.attr("device"); kind != "" && kind != "disk" {
			return false
		}
		_, ok := paths[d.child("target").attr("dev")]
		return !ok
	})
	for _, d := range devices.children("disk") {
		p, ok := paths[d.child("target").attr("dev")]
		if !ok {
			continue
		}
		d.setAttr("type", "file")
		d.remove(func(c *xnode) bool { return c.name == "source" || c.name == "backingStore" || c.name == "alias" })
		d.kids = append(d.kids, el("source", []string{"file", p}))
		drv := d.child("driver")
		if drv == nil {
			drv = el("driver", []string{"name", "qemu"})
			d.kids = append(d.kids, drv)
		}
		drv.setAttr("type", format)
	}
	if !keepIdentity {
		for _, ifc := range devices.children("interface") {
			mac, err := randomMAC()
			if err != nil {
				return "", err
			}
			ifc.ensure("mac").setAttr("address", mac)
		}
	}
	return dom.String(), nil
}

// randomMAC is a locally administered unicast address in QEMU's 52:54:00 range.
func randomMAC() (string, error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", b[0], b[1], b[2]), nil
}

// diskFileName is the file name of a restored disk: domain name and target, safe for a path.
func diskFileName(domain, target, format string) string {
	clean := strings.Map(func(r rune) rune {
		if r == '/' || r == 0 || r == '\\' {
			return '_'
		}
		return r
	}, domain)
	if clean == "." || clean == ".." || clean == "" {
		clean = "domain"
	}
	return filepath.Base(clean + "-" + target + "." + format)
}
