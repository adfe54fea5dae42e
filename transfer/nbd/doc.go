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
// The client sends one request at a time (a mutex orders them); a disk backup opens one client
// per reader when it wants more in flight. Context cancellation closes the connection's deadline
// so a stuck server never hangs a backup.
package nbd
