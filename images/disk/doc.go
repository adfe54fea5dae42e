// Package disk backs up a raw disk image (or the flat extent of a VMDK) into a repository as
// fixed-size blocks, and restores it sparse.
//
// Backup maps the file's allocated extents with SEEK_DATA/SEEK_HOLE and never reads a block
// that lies wholly in a hole; on filesystems or devices without that support it reads
// everything. A block that is a hole, or that reads back all zeros, is a zero id in the block
// map and costs no blob. Reading, hashing/storing and block-map assembly run as a pipeline: one
// reader goroutine with pooled buffers, N workers that hash and call SaveBlob (which
// compresses), and an assembler that emits repo.BlockMapChunk blobs in disk order as soon as a
// chunk is complete. Memory is bounded by the buffer pool and one map chunk, never by the disk
// size: a 2 TiB thin disk backs up in the same few MiB as a 2 GiB one.
//
// With Options.Cache, a block fingerprint cache (fingerprint_cache.go, docs/block-cache.md)
// remembers each allocated block's seeded XXH3-128 and blob id from the last successful backup of
// the source; a block that hashes the same and whose blob the repository still has is reused
// without BLAKE3 or SaveBlob. The old file is read and the new one written in disk order beside
// the pipeline, so the cache adds two 64 KiB buffers to the memory bound, not a table per block.
//
// Restore recreates the file at its apparent size and writes only non-hole blocks at their
// offsets from parallel workers, so a thin disk stays thin. It writes under a temporary name and
// renames when complete, with the image's mode, owner and times; an existing file that already
// holds the disk (Same) is left alone, one that differs is kept unless overwriting (package
// overwrite). Stream writes the whole image in order to an io.Writer (a pipe, a device) with
// holes as zeros. While a restore runs, the garbage collector waits for a soft memory limit
// instead of +50% of the live heap (gc_pace.go): an ssh:// store turns everything it receives
// into garbage in golang.org/x/crypto/ssh.
package disk
