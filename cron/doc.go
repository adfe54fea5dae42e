// Package cron keeps snapferry's scheduled jobs: named job definitions in a human-readable jobs
// file in the state folder, their schedules (5-field cron expressions and @daily-style
// descriptors), the host crontab lines that start them, the boot-time stanza in ESXi's
// /etc/rc.local.d/local.sh that re-creates those lines (and the SMTP firewall rule), the retry
// policy of a run, and the per-job log.
//
// It never runs a backup itself: `snapferry cron run NAME` (in cmd) loads the job, hands the
// job's arguments to an exec function, and this package decides whether and when to try again.
// Everything that computes with time takes a Clock so tests run against a fixed or fake clock.
//
// Contracts worth knowing:
//   - The crontab is edited as text by pure functions; a line belongs to snapferry only when it
//     ends with the marker comment "#snapferry:NAME". Every other line is kept byte for byte.
//   - The jobs file is changed only under an exclusive flock and written atomically (temp file,
//     fsync, rename), so a crashed edit leaves the old file.
//   - Suspend is a flag in the jobs file: installed lines are written commented out and `cron
//     run` refuses with ErrSuspended, so neither a stale crontab nor a manual install can start
//     a suspended job by accident. See docs/scheduling.md.
//
// This package is a leaf: it imports only the standard library, robfig/cron and gofrs/flock.
package cron
