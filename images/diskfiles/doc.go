// Package diskfiles gets files out of a backed-up disk without restoring the disk: it finds the
// disk a snapshot path names, opens it through disk.Reader (only the blocks read are loaded),
// reads its partitions and file systems with guestfs, lists them, and restores files, folders
// and symlinks from inside to a target folder with their modes and times.
//
// A path inside a disk is IMAGE/pN/PATH, or IMAGE/pN/VG/LV/PATH for an LVM logical volume,
// where IMAGE is the disk's name in the snapshot (vmdk0) or its source path (/srv/disk.img).
package diskfiles
