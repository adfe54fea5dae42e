// Package deploy makes sure the far side of an ssh:// store or a --host run has this very
// snapferry binary, so a store host or ESXi box needs no install step.
//
// Contract of Ensure:
//   - The remote binary is ~/.snapferry/bin/snapferry-VERSION-SUM (relative to the login
//     directory; SUM: 16 hex digits of its SHA-256, so an existing file of the right size is
//     reused without reading it back) and older builds of VERSION there are removed after an
//     upload; or exactly Options.RemotePath (--remote-path). Versions live side by side, so
//     hosts backing up with different releases never overwrite each other's binary mid-run.
//   - At Options.RemotePath it is reused when its size and SHA-256 equal the local binary's. The remote checksum comes
//     from `sha256sum` on the host (busybox has it) and, when that is missing, from reading
//     the file back over SFTP.
//   - Otherwise the local binary is uploaded over SFTP to a temp name in the same folder,
//     verified by checksum, made 0755, and renamed over the final name (posix-rename when the
//     server has it). A running older copy is unaffected: it keeps its inode.
//   - An ELF binary built for another CPU than the host's (`uname -m`) is refused before upload.
//   - The local binary is os.Executable(); where that fails (ESXi has no /proc) it is argv[0],
//     looked up on PATH when it has no slash.
package deploy
