package gcpace

import "runtime/debug"

// indexSizer is a blob store that can say how much memory its blob index holds
// (*repo.Repository, and wrappers that pass it on).
type indexSizer interface {
	IndexMemory() int64
}

// IndexMemory is how much memory bs's blob index holds, 0 when bs cannot say. A run's limit
// goes on top of it: a limit below the index would make the GC run without pause.
func IndexMemory(bs any) int64 {
	if s, ok := bs.(indexSizer); ok {
		return s.IndexMemory()
	}
	return 0
}

// Set sets the GC target to percent, unless keep says the one already set stays, and the soft
// memory limit to limit when that is lower than the one set (limit <= 0 leaves it alone), and
// returns what puts the previous target and limit back.
func Set(percent int, keep func(prev int) bool, limit int64) (restore func()) {
	prev := debug.SetGCPercent(percent)
	if keep(prev) {
		debug.SetGCPercent(prev)
	}
	prevLimit := debug.SetMemoryLimit(-1) // reads it
	if limit > 0 {
		debug.SetMemoryLimit(min(prevLimit, limit))
	}
	return func() {
		debug.SetGCPercent(prev)
		debug.SetMemoryLimit(prevLimit)
	}
}

// Current reports the GC target and soft memory limit in force, changing neither: the tests of
// what a run set read them with it.
func Current() (percent int, limit int64) {
	percent = debug.SetGCPercent(-1) // reads it, and turns the GC off until the next line
	debug.SetGCPercent(percent)
	return percent, debug.SetMemoryLimit(-1)
}
