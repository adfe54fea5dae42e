// Package repo is the deduplicating, compressed repository: content-addressed blobs in packs, an
// index rebuildable from the packs alone, snapshot manifests, locks, check, forget and prune.
// It runs on top of any store.Backend, so the same logic serves local folders, SFTP-only NAS
// boxes and `snapferry serve` over SSH. docs/repository-format.md is the on-disk contract.
//
// A backup, as callers (appliance jobs, the CLI) drive it:
//
//	r, err := repo.Open(ctx, be, repo.Options{TempDir: stateDir + "/tmp"})
//	lk, err := r.Lock(ctx, false)        // shared: other backups may run
//	defer lk.Unlock(ctx)
//	... sources call r.SaveBlob from several goroutines ...
//	id, err := r.SaveSnapshot(ctx, sn)   // flushes packs, then index, then commits the manifest
//
// Any SaveBlob or Flush error means the run must not commit a snapshot (SaveSnapshot refuses
// anyway after a lost pack). Check, Forget, Prune and RebuildIndex take their own locks.
//
// Concurrency: Repository methods are safe for concurrent use, except Close; Check, Prune and
// RebuildIndex reload the in-memory index, so they must not overlap SaveBlob calls on the same
// value (separate processes, as in practice, are fine). SaveBlob compresses in the caller's
// goroutine and appends to one of a few open packs in temp files (tree blobs to a pack of their
// own, pack_slots.go, so a cold cache fetches a snapshot's trees whole: tree_packs.go); the caller
// that fills a pack uploads it, which paces producers to the store's speed.
//
// Patch blobs (format version 3, blob_patch.go): SavePatch stores a changed disk block as the
// sub-blocks that differ from a whole base blob; LoadBlob rebuilds and verifies it, prune keeps
// bases of used patches alive, check verifies them.
//
// Encryption (format version 2 or 3, docs/security.md): Init with a Password draws a master key and
// stores it in keys/ sealed under scrypt(password); Open with Options.Password unseals it. From
// then on the same code paths seal every blob, pack header, index file, snapshot and lock with
// XChaCha20-Poly1305 and name blobs by keyed BLAKE3 (crypto.go: a nil *cryptor is the plain
// mode). A wrong or missing password is ErrWrongPassword/ErrNoPassword before anything is
// written; changed bytes fail authentication and surface as ErrCorrupt naming pack and offset.
package repo
