// Package health answers `snapferry status`: is everything on this host as it should be? It
// gathers the PID registry, running jobs, installed cron entries with their next run, the last
// result of each job definition, leftover snapferry VM snapshots and whether crond runs, and
// decides which findings need a human (Report.Attention): besides failures, a host where nothing
// was ever backed up, a scheduled job with no successful run within its schedule (a scheduled
// run that a whole period has passed after), and a report mail that could not be sent. The CLI only renders the Report and
// exits non-zero when Attention is not empty.
package health
