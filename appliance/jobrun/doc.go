// Package jobrun is the life cycle every job command (backup, replica, restore, check, prune)
// shares: it names the job, finds out who started it (a person, crond through `cron run`,
// another host through --host), runs the PID registry's phases around it, keeps its heartbeat
// while it makes progress (Work, pulse.go), records it in the job history and, when `cron run`
// asks for one, leaves the per-VM report for the e-mail. What each command does towards other
// snapferry processes (kill-idle, kept while busy, history) is in policy.go.
//
// It only composes pidmgr, cron/history and appliance/notify; the job's own work stays with the
// caller. The contract: Begin before the job starts any child process or VM snapshot, End exactly
// once afterwards (also on error and on SIGINT/SIGTERM), so the registry and the history never
// keep a live-looking entry for a finished process.
package jobrun
