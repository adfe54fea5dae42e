// Package vmx reads and edits VMware's key = "value" configuration files: the .vmx of a VM (its
// disks, in .vmx order) and the .vmsd snapshot tree beside it. It knows the file format only, not
// how a host runs VMs: the ESXi driver (appliance/esxi) and its simulator use it, and another
// driver that meets .vmx files can too.
//
// Parsers of files a guest's owner can write are fuzzed (FuzzParse; seeds are the reference
// samples in appliance/esxi/testdata/reference).
package vmx
