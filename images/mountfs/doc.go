// Package mountfs serves a repository as a read-only FUSE file system (Linux, through
// github.com/hanwen/go-fuse/v2, pure Go): `snapferry mount REPO DIR`.
//
//	DIR/snapshots/<time>_<id>/            one folder per snapshot, named by its UTC time and short id
//	    <the file tree>                   file backups, and a VM's .vmx/.nvram
//	    <disk>                            each disk as a read-only sparse file of its full size
//	    <disk>.parts/pN/...               its partitions' file systems (guestfs), pN/VG/LV/... for LVM
//
// Everything is loaded when read, never ahead: a snapshot folder loads its snapshot, a tree
// folder its tree blob, a file read the chunks or disk blocks it touches (disk.Reader). An error
// from the repository (a lost connection, a missing pack) is EIO for that operation, never a
// hang of the mount: every operation runs under the mount's context and a per-operation time
// limit.
package mountfs
