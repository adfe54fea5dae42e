// Package serve is the far side of an ssh:// store: `snapferry serve --root=DIR` speaks the wire
// protocol on its stdin and stdout and answers the store ops with the repository files below the
// root (through images/store/local) and the replica ops with in-place updates behind an undo
// journal (through transfer/replica).
//
// Contracts:
//   - Every file access stays below Root (package jail): `..`, absolute paths, names with NUL or
//     line breaks, server-private names and symlink escapes are refused with ClassRefused.
//   - Only the ops of the wire package are served; anything else is refused, never guessed.
//   - AppendOnly: new files may be saved; removing or overwriting is refused and logged. Lock
//     files this session saved may still be removed: a client must be able to release the lock
//     it took, or every append-only repository would fill with locks that block prune on the
//     trusted side. Other lock files (another host's, an administrator's prune lock) are refused,
//     so a compromised client cannot break someone else's lock; stale ones are removed on the
//     store host.
//     Replica updates rewrite files in place and are refused.
//   - Streamed saves (a pack uploaded before its name is known, named by a later commit): the
//     kind is checked before a temp file is made, the name at the commit as for a save. At most
//     16 uploads per session wait for their commit; those left when the session ends, however
//     it ends, are dropped with their temp files.
//   - On start, replica updates that a cut-off run left behind are rolled back, so a replica is
//     never left torn.
//   - A load of a pack range is sent with wire.Stream.SendFile: spliced into sshd's pipe, not
//     read into the process.
//   - EOF on the input ends the session: work still running is canceled, Serve returns nil.
package serve
