// Package replica keeps a ready-to-run copy of a set of files (a VM's flat disks, descriptors,
// .vmx, .nvram: the caller lists them; this package knows nothing of VMs) on the far side of a
// wire session, sending only what changed.
//
// Client side (Push): each disk file is read sparse (SEEK_DATA/SEEK_HOLE), cut into fixed blocks
// (1 MiB by default) and hashed by parallel workers with a fast seeded hash (XXH3-128), while the
// far side streams the fast hashes of its copy in the same order. Blocks whose hashes differ
// travel zstd-compressed with their BLAKE3 hash, which the far side checks; blocks that are zero
// on the source become holes on the far side. Small files are replaced whole.
//
// Far side (Receiver, used by transfer/serve): a hash sidecar per disk file holds both hashes of
// every block and the file size and mtime they describe; a stale or missing one is rebuilt by
// reading the copy. Disk files are written in place behind an undo journal: the old contents of a block
// (or "was zero") are appended to the journal and fsynced before the block is overwritten, in
// groups so one fsync covers several blocks. Small files are replaced atomically after a copy of
// the old one is journaled. Commit fsyncs the data, installs the new sidecars and deletes the
// journal; an update that never committed (link cut, server killed) is rolled back to the
// previous replica, byte for byte, when the session ends or the next server starts (Recover).
//
// docs/replica.md describes the protocol and the journal format.
package replica
