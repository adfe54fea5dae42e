// Package sftpstore is a store.Backend on a host that offers only SFTP (a NAS box, a locked-down
// storage account), over github.com/pkg/sftp on an SSH connection.
//
// The layout is the one of images/store/local, file for file: config, keys/, data/XX/<name>
// (XX = the first two characters of the name), index/, snapshots/, locks/. A repository written
// through SFTP can later be read as a local folder on that host, and the other way round.
//
// Contracts:
//   - Save writes "<dir>/.tmp-<random>" (never listed), fsyncs it when the server has
//     fsync@openssh.com, then publishes it under its final name without ever replacing an
//     existing file: with hardlink@openssh.com (link(2) fails atomically when the name is taken)
//     and else with the standard SFTP rename, which SFTP v3 defines as failing when the target
//     exists (OpenSSH implements it with link+unlink). posix-rename@openssh.com is deliberately
//     not used for publishing: it replaces the target, and repository files are immutable.
//   - SFTP v3 has no "disk full" status: OpenSSH reports ENOSPC as a generic failure. A failed
//     write is therefore checked against statvfs@openssh.com and reported as store.ErrNoSpace
//     when the file system has (almost) no room left.
//   - Writes and whole-file reads are pipelined (many requests in flight per file), which is
//     what makes SFTP fast on links with latency.
//   - Temp files a killed writer left are never listed, but CleanTemp (store.TempCleaner) counts
//     them for check and removes those prune proves no live writer is using, in the same folders
//     and by the same rule as a local repository (store.CleanTempFolders).
//   - A Store is safe for concurrent use: pkg/sftp multiplexes requests on one channel.
package sftpstore
