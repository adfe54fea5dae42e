// Package nbd speaks the Network Block Device protocol (the NBD project's proto.md): a client of
// the fixed newstyle handshake with NBD_OPT_GO, structured replies and metadata contexts, so a
// backup can read a disk QEMU exports and ask which extents are allocated (base:allocation) or
// dirty since a checkpoint (qemu:dirty-bitmap:NAME) with NBD_CMD_BLOCK_STATUS; and a small
// read-only server that exports a snapshot from a repository (instant boot).
//
// No well-kept pure-Go NBD client exists on the module proxy (the ones there hand the socket to
// the kernel's nbd driver, or need cgo for libnbd), so this is a small one. Everything read from
// the peer is parsed by functions over byte slices (parse.go) that the fuzz tests drive; lengths
// the peer announces are bounded before anything is allocated.
//
// The client pipelines: up to Window requests are in flight on one connection (StartRead, or
// several goroutines calling ReadAt and BlockStatus), one goroutine reads the replies and matches
// them to their requests by handle, so a server may answer out of order and interleave the
// chunks of different requests. Read data goes straight into the caller's buffer: memory does not
// grow with the window. A reply that breaks the protocol (an unknown handle, a chunk outside its
// request or larger than allowed, more chunks than a request can have) ends the connection with
// an error naming it; every request in flight fails with that error. Context cancellation closes
// the connection, so a stuck server never hangs a backup.
//
// The server answers the requests of a connection concurrently (a bounded number at a time), as
// QEMU sends several when a guest and a block job read at once.
package nbd
