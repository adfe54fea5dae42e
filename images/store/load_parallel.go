package store

// LoadParallelism is implemented by stores whose reads need more loads in flight than a reader
// would start on its own to fill the link: an ssh:// store on a long round trip spreads large
// loads over several SSH sessions (transfer/remotestore read lanes), each carrying one window
// per round trip, and a restore with one load per worker leaves each session idle between its
// loads (measured: 44% of the no-latency throughput through 25 ms each way with 4 workers,
// 52% with 8; docs/benchmarks.md, "Read lanes").
type LoadParallelism interface {
	// LoadParallelism is how many large loads in flight would fill the store's link now; 0
	// when the reader's own choice is as good.
	LoadParallelism() int
}

// LoadParallelismOf asks be, or the first store below its wrappers that can tell, how many large
// loads in flight fill its link (0: no advice).
func LoadParallelismOf(be Backend) int {
	if p, ok := findAbility[LoadParallelism](be); ok {
		return p.LoadParallelism()
	}
	return 0
}
