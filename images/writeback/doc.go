// Package writeback asks the kernel to start writing a file out while the program is still
// writing it, so the fsync that makes the file durable waits for the last stretch only.
//
// Left alone, Linux starts writing dirty pages only when they pass dirty_background_ratio (10%
// of RAM: 2.4 GiB on a 24 GiB host), so a file of a few hundred MiB stays dirty until its fsync,
// which then holds the writer while the CPUs idle. A disk restore (images/disk) and every pack a
// local store commits (images/store/local) use it.
package writeback
