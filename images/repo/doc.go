// Package repo is the deduplicating, compressed repository: content-addressed blobs in packs, an
// index rebuildable from the packs alone, snapshot manifests, locks, check, forget and prune.
// It runs on top of any store.Backend, so the same logic serves local folders, SFTP-only NAS
// boxes and `snapferry serve` over SSH.
package repo
