// Package hoststate keeps a host's own snapferry state in the repository it backs up into, so a
// dead host can be rebuilt from its backups (NetWorker calls this the bootstrap; docs/esxi.md has
// the disaster-recovery steps).
//
// Every backup run into a repository also commits a small snapshot of kind "host-state"
// (source "snapferry host state", the backing-up host's name as its host) holding:
//
//	manifest.json   where the files came from: state folder, binary, known_hosts path, whether
//	                the crontab lines were persisted in local.sh (and the SMTP firewall rule
//	                with them), and which password files the jobs name
//	jobs.json       the jobs file: job definitions, schedules, retries, mail settings, the
//	                suspended flag (mail passwords are never in it, only the files that hold them)
//	history.jsonl   the job history
//	known_hosts     the SSH known_hosts file the jobs use
//	secret-N        the contents of the password files the jobs name (SMTP and repository
//	                passwords) - only when the repository is encrypted; otherwise the manifest
//	                lists them as not stored and restore says which files to recreate
//
// The snapshot is an ordinary files tree (one flat folder), so check, prune, forget (it is its own
// host+source group), ls and restore --target all work on it.
//
// Restore (Apply) writes the state into a fresh host's state folder and then installs the crontab
// lines from the restored jobs file exactly as `cron install` does, persisting them in local.sh
// again when the old host had. It never replaces a file that holds something else without
// Overwrite: a jobs file with other jobs is an error (ErrExists), an existing history or secret
// file is kept and reported, known_hosts lines are merged.
package hoststate
