// Package remoterun runs a command on another host over SSH for `--host`: output streams back
// live, the remote exit status comes back as the local one, and stopping the local process stops
// the remote job in a way that lets its cleanup run there (a VM snapshot must not stay behind).
//
// Cancellation contract (both ends):
//   - Run, when its context ends, sends the "signal" request for SIGTERM and closes the remote
//     stdin, then waits up to Options.Grace for the job to finish its cleanup and exit.
//   - The remote job must treat EOF on its stdin as cancellation (WatchStdin does that). The
//     signal alone is not enough: OpenSSH does not deliver signals to root logins (their
//     sessions run in the privileged monitor, which refuses; ESXi logins are root) nor to
//     forced-command sessions (authorized_keys command="..."), and when the
//     connection itself dies no signal can be sent at all, but sshd still closes the job's stdin.
//   - Run never writes to the remote stdin: it exists only to carry that EOF. Stdin
//     cancellation must be switched on explicitly (Launch adds CancelFlag; the CLI then wraps
//     its context with WatchStdin), since cron and shells give a job an stdin that may be at EOF
//     from the start.
//
// Launch is the whole `--host` path: dial, deploy (or --remote-path), run with CancelFlag.
package remoterun
