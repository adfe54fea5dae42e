package libvirt

import (
	"crypto/rand"
	"fmt"
	"path/filepath"
	"strings"

	"libvirt.org/go/libvirtxml"
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
func domainDisks(doc string) (dom *libvirtxml.Domain, disks []diskSpec, skipped []string, err error) {
	if len(doc) > maxDomainXML {
		return nil, nil, nil, fmt.Errorf("domain XML of %d bytes is too large", len(doc))
	}
	dom = &libvirtxml.Domain{}
	if err := dom.Unmarshal(doc); err != nil {
		return nil, nil, nil, fmt.Errorf("parse domain XML: %w", err)
	}
	if dom.Devices == nil {
		return dom, nil, nil, nil
	}
	for _, d := range dom.Devices.Disks {
		if d.Target == nil || d.Target.Dev == "" {
			continue
		}
		if d.Device != "" && d.Device != "disk" {
			continue
		}
		s := diskSpec{Target: d.Target.Dev, Bus: d.Target.Bus, Format: "raw"}
		if d.Driver != nil && d.Driver.Type != "" {
			s.Format = d.Driver.Type
		}
		switch {
		case d.Source != nil && d.Source.File != nil:
			s.Path = d.Source.File.File
		case d.Source != nil && d.Source.Block != nil:
			s.Path = d.Source.Block.Dev
		default:
			skipped = append(skipped, d.Target.Dev)
			continue
		}
		if s.Path == "" {
			skipped = append(skipped, d.Target.Dev)
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
	dom.Name = name
	if !keepIdentity {
		dom.UUID = ""
	}
	dom.ID = nil
	if dom.Devices != nil {
		var kept []libvirtxml.DomainDisk
		for _, d := range dom.Devices.Disks {
			if d.Target == nil || (d.Device != "" && d.Device != "disk") {
				kept = append(kept, d)
				continue
			}
			p, ok := paths[d.Target.Dev]
			if !ok {
				continue
			}
			d.Source = &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: p}}
			d.BackingStore = nil
			if d.Driver == nil {
				d.Driver = &libvirtxml.DomainDiskDriver{Name: "qemu"}
			}
			d.Driver.Type = format
			d.Alias = nil
			kept = append(kept, d)
		}
		dom.Devices.Disks = kept
		if !keepIdentity {
			for i := range dom.Devices.Interfaces {
				mac, err := randomMAC()
				if err != nil {
					return "", err
				}
				dom.Devices.Interfaces[i].MAC = &libvirtxml.DomainInterfaceMAC{Address: mac}
			}
		}
	}
	return dom.Marshal()
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
