package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"time"
)

// startMemProfile writes a heap profile to $SNAPFERRY_MEMPROFILE when it is set: the one taken
// at the moment the heap in use was largest (sampled twice a second), since the peak, not the
// end of a run, is what hits the ESXi shell's memory pool. The returned func writes it.
func startMemProfile() func() {
	path := os.Getenv("SNAPFERRY_MEMPROFILE")
	if path == "" {
		return func() {}
	}
	runtime.MemProfileRate = 64 << 10
	var best bytes.Buffer
	var peak uint64
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapInuse <= peak {
			return
		}
		peak = ms.HeapInuse
		best.Reset()
		_ = pprof.Lookup("heap").WriteTo(&best, 0)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				sample()
			case <-stop:
				sample()
				return
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		if err := os.WriteFile(path, best.Bytes(), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "warning: SNAPFERRY_MEMPROFILE: %v\n", err)
		}
	}
}
