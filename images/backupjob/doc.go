// Package backupjob backs up disk images and file trees of this host as repository snapshots:
// the parent each new snapshot names, the key of an image's block fingerprint cache, and the
// commit through repo.Run, the one commit path that VM (appliance/vmjob) and tape backups use
// too. The CLI only picks the sources and prints the results.
package backupjob
