// Package blobhash is BLAKE3 (the same digests as lukechampine.com/blake3) computed on the
// caller's goroutine, on that library's SIMD kernels (its guts package).
//
// Why: the library's Hasher.Write, and so Sum256 of anything over 1 KiB, starts one goroutine
// per 16 KiB of input to spread the work over cores (64 for a 1 MiB disk block). A backup already
// keeps every core busy with one block per worker, so those goroutines only add cost: their
// creation and stack growth alone were 0.24-0.31 CPU s of a ~6 CPU s fast full image backup,
// and the backup's user time fell by 0.6-0.9 s without them (docs/benchmarks.md,
// "--compression=fast: where the CPU went"). The digests are unchanged, so ids and pack names
// are the same as before.
package blobhash
