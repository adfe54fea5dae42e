// Package metacache keeps local copies of a remote repository's index and snapshot files, so
// opening the repository, `snapshots`, `ls` and every incremental backup read them from disk
// instead of fetching each one again (one GET per file on s3://, a round trip each on ssh://),
// and of small ranges of packs (ranges.go): the directory trees an incremental file backup reads
// from its parent snapshot one by one.
//
// It is a store.Backend wrapper. Listings still go to the store, because other hosts add and
// prune files; only the contents are cached. That is safe because index and snapshot files are
// immutable and named by the BLAKE3 hash of their stored bytes (docs/repository-format.md): a
// cached copy is checked against its name when read, and one that does not match is dropped and
// fetched again. A listing of a kind removes the cached copies of files no longer listed, so the
// cache holds what the repository holds and no more.
package metacache
