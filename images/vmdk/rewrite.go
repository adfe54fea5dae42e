package vmdk

import (
	"fmt"
	"strings"
)

// Createtypes whose data is one plain extent that images/disk can read block by block.
var flatCreateTypes = map[string]bool{"vmfs": true, "vmfsThin": true, "monolithicFlat": true, "vmfsEagerZeroedThick": true}

// FlatExtent returns the single flat extent of a base disk, or an error that says why this
// disk cannot be backed up as a descriptor + flat pair and what to do instead.
func (d *Descriptor) FlatExtent() (Extent, error) {
	switch d.CreateType {
	case "vmfsPassthroughRawDeviceMap":
		return Extent{}, fmt.Errorf("createType %s is a physical raw device mapping: it cannot be snapshotted or backed up as a file; back up the LUN from its storage", d.CreateType)
	case "vmfsRawDeviceMap", "vmfsRaw", "fullDevice", "partitionedDevice":
		return Extent{}, fmt.Errorf("createType %s maps a raw device: back up the device itself", d.CreateType)
	case "vmfsSparse", "seSparse", "vsanSparse", "monolithicSparse", "twoGbMaxExtentSparse", "streamOptimized":
		return Extent{}, fmt.Errorf("createType %s is a sparse or snapshot-delta disk, not a flat one: back up its base disk (or the VM, which freezes the base with a snapshot), or convert it with vmkfstools -i -d thin", d.CreateType)
	}
	if !flatCreateTypes[d.CreateType] && d.CreateType != "twoGbMaxExtentFlat" {
		return Extent{}, fmt.Errorf("createType %q is not a flat disk this tool knows", d.CreateType)
	}
	if len(d.Extents) != 1 {
		return Extent{}, fmt.Errorf("disk has %d extents: only single-extent flat disks are supported; convert it with vmkfstools -i -d thin", len(d.Extents))
	}
	e := d.Extents[0]
	if (e.Type != "VMFS" && e.Type != "FLAT") || e.File == "" || e.Offset != 0 {
		return Extent{}, fmt.Errorf("extent %q is not a flat data file at offset 0", e.String())
	}
	return e, nil
}

// ForRestore returns the text of a descriptor for a restored copy of this disk whose flat
// extent is named flat: it gets content id cid (and the matching tail of ddb.longContentID),
// no parent and no change-tracking file, since the restored copy is a new, standalone base
// disk. Everything else (geometry, adapter, uuid, comments, line ends) is kept.
func (d *Descriptor) ForRestore(flat string, cid uint32) ([]byte, error) {
	e, err := d.FlatExtent()
	if err != nil {
		return nil, err
	}
	if flat == "" || strings.ContainsAny(flat, "\"/\r\n") {
		return nil, fmt.Errorf("extent file name %q: want a plain file name without quotes", flat)
	}
	e.File = flat
	out := *d
	out.lines = nil
	for _, l := range d.lines {
		switch {
		case l.extent >= 0:
			l.text = e.String()
		case l.key == "CID":
			l.text = fmt.Sprintf("CID=%08x", cid)
		case l.key == "parentCID":
			l.text = fmt.Sprintf("parentCID=%08x", uint32(NoParentCID))
		case l.key == "parentFileNameHint", l.key == "changeTrackPath":
			continue
		case l.key == "ddb.longContentID":
			long := d.DDB[l.key]
			if len(long) >= 8 {
				long = long[:len(long)-8] + fmt.Sprintf("%08x", cid)
			}
			l.text = fmt.Sprintf("ddb.longContentID = %q", long)
		}
		out.lines = append(out.lines, l)
	}
	return out.Bytes(), nil
}
