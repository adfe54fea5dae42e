// Package history is the job history: an append-only log of JSON lines in the state folder
// (`snapferry-history.jsonl`) that every job writes as it moves through its states, and that
// `snapferry jobs [JOBID] [--summary]` and `snapferry status` read.
//
// A job writes one Record per transition: queued (a retry waits), active (running, with its pid
// and start token), done (with exit status, error text and byte counts) or died (recorded by
// whoever noticed). The reader folds the records of each job id into one Job; a job still active
// or queued whose process (pid AND start token) no longer runs is reported as died, so a run
// killed with SIGKILL or by a reboot never shows as running forever.
//
// Contracts:
//   - Appends are safe across processes: each record is one write(2) of one line to a file
//     opened O_APPEND, under an exclusive flock on the sidecar `snapferry-history.lock` (which
//     also serialises rotation). Readers take the shared lock.
//   - Crashes: a torn last line (a writer killed mid-write) is ignored by readers, and the next
//     append starts a fresh line first so that the torn bytes never glue onto a good record.
//   - Rotation by size: before an append would push the file past MaxBytes, the file becomes
//     `.1` (the older ones shift up: `.1` -> `.2` ...) and only the newest Keep rotated files stay.
//     Readers read them oldest first, so a job's records may straddle files; records of a job
//     whose early files were rotated away fold into what is left.
//   - The format is versioned (field "v"); readers skip records of a newer version with a warning.
//     See FORMAT.md in this folder.
//
// This package is a leaf: process liveness comes in through the Liveness interface, which
// pidmgr.ProcessTable satisfies.
package history
