package tree

import (
	"os"

	"github.com/snapferry/snapferry/images/gcpace"
	"github.com/snapferry/snapferry/images/repo"
)

// treeGCPercent is the GC target while a tree backup or restore runs. Its live heap is mostly
// pointer-free buffers, cheap to mark, so collecting at +25% instead of the binary's +50% cost
// no measurable CPU on /usr/share while it cut the peak RSS by ~8 MiB (78 -> 68-70 MiB, measured).
const treeGCPercent = 25

// treeMemoryLimit is the soft limit of the Go runtime's memory while a tree backup or restore
// runs, on top of what the repository's index holds (which grows with the repository, not with
// the run; a limit below it would make the GC run without pause). The ESXi shell shares ~800
// MB among everything on the host and a tree run should stay near 64 MiB RSS, of which ~12 MiB
// are the binary's own pages: a tree run's live heap is ~30 MiB at its peaks (a big folder's
// old and new tree at once), and the GC's headroom above that, not the live heap, took the
// /usr/share steps to 67-75 MiB RSS. With this limit the runtime collects and returns memory
// earlier near it: 58-62 MiB on the same steps (measured, docs/benchmarks.md). Above the limit
// it only collects more often (the runtime caps that at half the CPU), it never fails.
const treeMemoryLimit = 44 << 20

// tightenGC lowers the GC target to treeGCPercent and the memory limit to treeMemoryLimit plus
// bs's index for the duration of a backup or restore, and returns what puts the previous ones
// back. A tighter target or limit already set is kept (GOGC, debug.SetMemoryLimit), and a limit
// set with GOMEMLIMIT is the user's choice either way: a host with memory to spare may raise it
// (fewer collections), a tighter pool lower it.
func tightenGC(bs repo.BlobStore) (restore func()) {
	limit := int64(0) // the user's GOMEMLIMIT stays
	if os.Getenv("GOMEMLIMIT") == "" {
		limit = treeMemoryLimit + gcpace.IndexMemory(bs)
	}
	return gcpace.Set(treeGCPercent, func(prev int) bool { return prev < treeGCPercent }, limit)
}
