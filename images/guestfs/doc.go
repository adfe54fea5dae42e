// Package guestfs reads the partitions, LVM volumes and file systems of a disk image through
// random access, read-only, without mounting anything: the disk is an io.ReaderAt of known size
// (a file, or a backed-up disk in the repository read block by block), so it works the same on a
// Linux host and in the ESXi shell, as any user.
//
// Open lists the volumes of a disk: the partitions of an MBR (primary, extended and logical, in
// Linux numbering p1..p4, p5..) or GPT table, or p0 for a file system with no table. Each volume
// gets its file-system type from its first sectors (detect.go). A volume that is an LVM2
// physical volume lists its volume group's linear logical volumes (lvm_*.go), named VG/LV.
//
// Volume.OpenFS opens a volume's file system as an FS: ext2/3/4 (ext_*.go), XFS (xfs*.go),
// FAT12/16/32 (fat.go) and exFAT (exfat.go) are read by code here, after the pure-Go libraries
// failed on real images (see the type comments and docs/file-restore.md); NTFS through
// Velocidex's go-ntfs (fs_ntfs.go). btrfs, ReFS, LUKS, BitLocker and swap are detected, listed
// and refused with ErrUnsupported, whose message says the whole disk can still be restored.
//
// Everything here reads what a guest wrote, so every parser is fuzzed, every loop is bounded by
// the data's own size or a fixed limit, and each call into a file system runs under a guard
// (guard.go) that serialises it and turns a panic into an error naming the volume: the
// readers are fuzzed, but a hostile image must never take the process down.
package guestfs
