// Package vmdk reads and writes VMware VMDK descriptor files and backs up the common
// "descriptor + flat extent" disk (x.vmdk naming x-flat.vmdk) through images/disk.
//
// A descriptor is a small text file: header keys (version, encoding, CID, parentCID,
// createType, parentFileNameHint, changeTrackPath), extent lines such as
// `RW 75497472 VMFS "web01-flat.vmdk"` whose sizes are 512-byte sectors, and ddb.* keys.
// Parse keeps every original line so a rewritten descriptor (new extent name, new CID for a
// restore) differs from the original only where it must: comments, key order, unknown keys,
// geometry and CRLF line ends survive. The format follows the samples in the project's ESXi
// reference (vmdk-descriptors.txt).
package vmdk
