package wire

import "sync"

// chunkPool recycles the ChunkSize buffers of data frames on both ends of a session. A full
// backup streams gigabytes through them; a fresh slice per 128 KiB chunk kept the far side's
// garbage collector busy for about a quarter of a store host's CPU time.
var chunkPool = sync.Pool{New: func() any {
	b := make([]byte, ChunkSize)
	return &b
}}

// getChunk returns a pooled buffer of length n (n <= ChunkSize) owned by the caller.
func getChunk(n int) []byte {
	return (*chunkPool.Get().(*[]byte))[:n]
}

// putChunk gives b back when it is a whole chunk buffer. Only pass buffers nothing else refers
// to: the payload of a data frame this session read or is done writing.
func putChunk(b []byte) {
	if cap(b) != ChunkSize {
		return
	}
	b = b[:cap(b)]
	chunkPool.Put(&b)
}
