// Package exitcode holds snapferry's documented exit statuses and the error type that carries
// one from a command to main, which turns an error into a status in exactly one place
// (cmd/snapferry/exit.go).
//
// It lives under cron because cron is the lowest layer that reads these statuses: a scheduled
// run decides from its child's status whether a retry can help. The package imports only the
// standard library, so cron stays a leaf and every layer above (appliance, cmd) may use it.
//
// Only an *Error carries a status. Errors of other kinds never do, even when they have an
// ExitCode method: a helper tool's status (vim-cmd exiting 12) is the tool's, not snapferry's,
// and must not turn into "wrong password".
package exitcode
