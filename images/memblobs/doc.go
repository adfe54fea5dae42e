// Package memblobs is test support for the backup sources (images/disk, images/tree,
// images/vmdk): Store, an in-memory repo.BlobStore that keeps plaintext blobs in a map,
// verifies ids on load like the real repository does and counts calls so tests can prove what
// a run read or stored; PatchStore, a Store that also keeps patches (repo.PatchStore) and rebuilds
// them on load; LocalRepo, a real repository in a temp folder; RandBytes for test data.
// It is not for production: nothing is persisted and memory grows with the data.
package memblobs
