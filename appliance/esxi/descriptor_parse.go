package esxi

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Descriptor is the part of a VMDK descriptor file the driver needs: disk type, chain link and
// extents. (images/vmdk owns the full descriptor model used for backup and restore.)
type Descriptor struct {
	CID                string
	ParentCID          string
	CreateType         string // vmfs, vmfsSparse, seSparse, vmfsRawDeviceMap, vmfsPassthroughRawDeviceMap...
	ParentFileNameHint string // "" for a base disk
	Extents            []Extent
}

// Extent is one extent line: `RW 75497472 VMFS "web01-flat.vmdk"`.
type Extent struct {
	Access  string // RW, RDONLY, NOACCESS
	Sectors int64  // 512-byte sectors
	Type    string // VMFS, VMFSSPARSE, SESPARSE, VMFSRDM, VMFSRAW...
	File    string // relative to the descriptor's folder
}

// Size is the disk's size in bytes: the extents' sectors x 512.
func (d *Descriptor) Size() int64 {
	var n int64
	for _, e := range d.Extents {
		n += e.Sectors * 512
	}
	return n
}

// IsDelta reports a snapshot delta (it has a parent).
func (d *Descriptor) IsDelta() bool {
	return d.ParentFileNameHint != "" && !strings.EqualFold(d.ParentCID, "ffffffff")
}

var extentRe = regexp.MustCompile(`^(RW|RDONLY|NOACCESS)\s+(\d+)\s+([A-Z]+)(?:\s+"([^"]*)")?(?:\s+\d+)?\s*$`)

// ParseDescriptor parses a VMDK text descriptor (LF or CRLF). Unknown keys and the ddb section are
// skipped; a line that is neither a key, an extent nor a comment is an error.
func ParseDescriptor(text string) (*Descriptor, error) {
	d := &Descriptor{}
	sawHeader := false
	for n, line := range splitLines(text) {
		t := strings.TrimSpace(line)
		if t == "" {
			continue
		}
		if strings.HasPrefix(t, "#") {
			if strings.HasPrefix(t, "# Disk DescriptorFile") {
				sawHeader = true
			}
			continue
		}
		if m := extentRe.FindStringSubmatch(t); m != nil {
			sec, err := strconv.ParseInt(m[2], 10, 64)
			if err != nil || sec < 0 || sec > 1<<50 {
				return nil, fmt.Errorf("parse descriptor line %d %q: bad sector count", n+1, line)
			}
			d.Extents = append(d.Extents, Extent{Access: m[1], Sectors: sec, Type: m[3], File: m[4]})
			continue
		}
		eq := strings.IndexByte(t, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("parse descriptor line %d %q: not a key, extent or comment", n+1, line)
		}
		key := strings.TrimSpace(t[:eq])
		val := unquoteOuter(strings.TrimSpace(t[eq+1:]))
		switch key {
		case "CID":
			d.CID = val
		case "parentCID":
			d.ParentCID = val
		case "createType":
			d.CreateType = val
		case "parentFileNameHint":
			d.ParentFileNameHint = val
		}
	}
	if !sawHeader && d.CreateType == "" {
		return nil, fmt.Errorf("parse descriptor: no \"# Disk DescriptorFile\" header and no createType (not a VMDK descriptor?)")
	}
	if len(d.Extents) == 0 {
		return nil, fmt.Errorf("parse descriptor: no extent line (RW <sectors> <type> \"file\")")
	}
	return d, nil
}
