package disk

import (
	"os"

	"github.com/snapferry/snapferry/images/gcpace"
	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/store"
)

// restoreGCPercent is the GC target while an image restore runs. The binary's default of 50
// (cmd/snapferry) keeps backups near 50 MiB RSS, but a restore from an ssh:// store turns every
// byte it receives into garbage in golang.org/x/crypto/ssh (a fresh slice per 32 KiB packet,
// ~1 GB in the 1.7 GB benchmark restore): against a live heap of ~17 MiB that was a collection
// every ~8 MiB, 175-233 of them per restore (6 locally), each also emptying the sync.Pools of
// block scratch and wire chunks so they were allocated afresh (~200 MB more). The memory limit
// below, not this target, bounds the heap.
const restoreGCPercent = 400

// restoreMemoryLimit is the soft limit of the Go runtime's memory while an image restore runs,
// before what the workers hold and what the repository's index holds (which grows with the
// repository, not with the run; a limit below it would make the GC run without pause). The GC
// then runs when the heap reaches the limit instead of +50% of the live heap: half the
// collections over ssh:// at the same or a lower peak RSS (55-57 MB against 54-65 MB measured
// with 4 workers of 1 MiB blocks, docs/benchmarks.md), since the limit also makes the runtime
// return freed pages sooner. A limit under the live heap makes the GC run back to back (the
// runtime caps it at half the CPU: a restore through read lanes took 16 CPU s instead of 6 with a
// fixed limit), so the limit grows with what the run holds live: workerHeldBlocks blocks per
// worker.
const restoreMemoryLimit = 32 << 20

// workerHeldBlocks is how many blocks' worth of memory one restore worker holds live: the
// compressed blob being delivered and the block it decompresses into.
const workerHeldBlocks = 2

// paceGC sets the GC target to restoreGCPercent and the memory limit to restoreMemoryLimit plus
// what workers restore workers of blockSize hold plus bs's index for the duration of a restore,
// and returns what puts the previous ones back. A user's GOGC or GOMEMLIMIT is their choice: with
// either set nothing changes (a higher target without the limit would let the heap grow
// unbounded). A store that asks for more loads in flight (read lanes on a long link) keeps the
// defaults too: there the restore waits on the link, not the CPU, and its session buffers and
// loads sent ahead hold more than the workers do. A lower limit already set is kept, and so is
// a higher target. The settings are the process's: restores run one at a time (the callers
// restore a VM's disks in turn), so each puts back what it found.
func paceGC(bs repo.BlobStore, workers, blockSize int) (restore func()) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" || storeLoadParallelism(bs) > 0 {
		return func() {}
	}
	limit := restoreMemoryLimit + int64(workers)*workerHeldBlocks*int64(blockSize) + gcpace.IndexMemory(bs)
	// A target above this one, or the GC turned off, was set on purpose: it stays.
	return gcpace.Set(restoreGCPercent, func(prev int) bool { return prev < 0 || prev > restoreGCPercent }, limit)
}

// storeLoadParallelism is how many large loads in flight bs's store asks for, 0 when it gives
// no advice (store.LoadParallelism: an ssh:// store with read lanes on a long round trip asks).
func storeLoadParallelism(bs repo.BlobStore) int {
	if b, ok := bs.(interface{ Backend() store.Backend }); ok {
		return store.LoadParallelismOf(b.Backend())
	}
	return 0
}
