// Package pidmgr keeps the PID registry: the file `snapferry-pid` in the state folder that names
// every running snapferry process, what started it (user, cron, remote, sshpipe) and which job it
// runs. The CLI drives it in three phases around every job:
//
//  1. Cleanup drops entries whose process is gone or whose pid was reused by another process.
//  2. KillIdle stops snapferry processes a user left behind: live user entries of this registry
//     that started before this one, with their children. A restore, check or prune that is
//     making progress (its heartbeat, see Pulse) keeps running; scheduled (cron), remote and
//     SSH-pipe processes keep running; a process without an entry here (another --home, a
//     serve for another client) is never touched; of two launches only the newer stops the older.
//  3. Shutdown, from a defer and from the SIGINT/SIGTERM handler, removes this process and every
//     entry whose process no longer runs.
//
// Register adds this process between phases 2 and 3 (Begin runs 1, 2 when asked, Register and
// the first heartbeat; the job then beats through BeginReport.Pulse); List reports every entry
// as live, gone or recycled for `snapferry pid list` and `snapferry status`.
//
// Contracts:
//   - Every change happens under an exclusive flock on the sidecar file `snapferry-pid.lock` and
//     replaces the registry atomically (temp file, fsync, rename, fsync of the folder), so readers
//     never see half a file and concurrent writers never lose each other's lines.
//   - Reading skips a torn or garbage line with a warning and keeps all the others.
//   - A process is identified by pid AND start token (see ProcessTable; on Linux start ticks and
//     boot id): a pid alone may have been recycled. Its heartbeat file (snapferry-pid.beat/PID)
//     counts only when it carries the same pid and token. No process is signalled unless its start token still matches what was observed
//     and it is a snapferry binary (same executable path or name) or a child of one being stopped.
//   - Process facts come from a ProcessTable: gopsutil where /proc exists (Linux), `ps -c` output
//     where it does not (ESXi). On ESXi the start token is weaker and parent pids are unknown; see
//     docs/pid-registry.md.
//
// The file format is documented, versioned and stable: docs/pid-registry.md.
package pidmgr
