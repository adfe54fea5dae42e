// Package store defines the Backend: the few file operations a repository needs from the place it
// lives (a local folder, an SFTP-only NAS, `snapferry serve` at the far end of an SSH pipe).
//
// Everything above a Backend (packs, index, snapshots, locks) is repository logic in images/repo
// and runs on the client; a Backend only stores named, immutable files. Keeping it this small is
// what lets one conformance suite (storetest) prove every implementation equal.
//
// Optional abilities are one-method interfaces a backend may add: SpaceReporter (free bytes),
// TempCleaner (count and remove leftovers of interrupted saves; CleanTempFolders does it for the
// folder layout) and Cleaner (other leftovers of object stores). Implementations: store/local
// here; SFTP, S3 and the remote store over the wire protocol live in transfer/.
package store
