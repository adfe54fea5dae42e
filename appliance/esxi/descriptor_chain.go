package esxi

import "github.com/snapferry/snapferry/images/vmdk"

// IsDelta reports whether a descriptor is a snapshot delta: it names a parent disk. Deltas are
// recognised by their content, never by file names (see the reference: -000001 names lie when
// disks were renamed or cloned).
func IsDelta(d *vmdk.Descriptor) bool {
	return d.ParentFileNameHint != "" && d.ParentCID != vmdk.NoParentCID
}
