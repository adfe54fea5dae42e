package tree

import "runtime/debug"

// treeGCPercent is the GC target while a tree backup runs. Its live heap is mostly pointer-free
// buffers, cheap to mark, so collecting at +25% instead of the binary's +50% cost no measurable
// CPU on /usr/share while it cut the peak RSS by ~8 MiB (78 -> 68-70 MiB, measured).
const treeGCPercent = 25

// tightenGC lowers the GC target to treeGCPercent for the duration of a backup and returns
// what puts the previous one back. A tighter target already set (GOGC, or off) is kept.
func tightenGC() (restore func()) {
	prev := debug.SetGCPercent(treeGCPercent)
	if prev < treeGCPercent {
		debug.SetGCPercent(prev)
	}
	return func() { debug.SetGCPercent(prev) }
}
