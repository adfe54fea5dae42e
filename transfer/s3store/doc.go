// Package s3store is a store.Backend on S3-compatible object storage (Ceph RGW, AWS S3 and the
// like), spoken to through github.com/minio/minio-go/v7: the client restic and kopia use, kept by
// the MinIO project, with AWS v4 signing, credential chains and retries with backoff built in.
//
// Layout: a repository at s3://HOST/BUCKET/PREFIX keeps the same file layout as a local folder
// (store.RelPath) below PREFIX: PREFIX/config, PREFIX/data/ab/abcd…, PREFIX/index/…, so a local
// repository copied into a bucket with any S3 tool is an s3:// repository.
//
// Immutable files on a store without rename: a file up to one part (Options.PartSize) is one
// PutObject with "If-None-Match: *", so of two writers of one name exactly one wins and the other
// gets store.ErrExist. A larger file (only packs are larger, and packs are named by the hash of
// their bytes, so two writers of one pack name write the same bytes) is a multipart upload under
// its final name, checked for existence before it starts and before it completes; a failed or
// cancelled upload is aborted, so no part stays billed and nothing is visible under the name. The
// upload of a writer killed by SIGKILL stays unfinished: CleanTemp (store.TempCleaner) counts such
// uploads for check and aborts the ones prune proves no live writer can own.
//
// Errors: transient ones (5xx, timeouts, SlowDown/throttling, cut connections) are retried with
// exponential backoff by minio-go, and a read cut mid-object resumes where it stopped; permanent
// ones (access denied, no such bucket, bad credentials) fail at once with a message that says
// what to fix. Credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a credentials
// file, never from the command line (where ps would show them).
//
// Object Lock (Options.LockFor): every object is written in COMPLIANCE mode with a retain-until
// date, see lock.go.
package s3store
