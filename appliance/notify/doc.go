// Package notify tells people how a job went: an e-mail report after a job (plain text and
// HTML, one row per VM, errors first, repository totals) sent over SMTP, and event hooks that
// run a shell command with the details in environment variables.
//
// Contracts:
//   - Nothing here may break a backup. SendReport returns an error for the caller to log; hooks
//     return warnings only, and a hook that hangs is killed with its whole process group after
//     its timeout.
//   - Secrets are never printed: the SMTP password is read from a file at send time and appears
//     in no error, log line or String() output.
//   - The SMTP dialogue never pipelines (one command, one reply), so it works with the small
//     relays and appliances small shops have; TLS is STARTTLS, implicit TLS or none.
//
// The package depends on the standard library only, so the cron job runner and the backup job
// can both use it.
package notify
