package tree

import (
	"fmt"

	fastcdc "github.com/jotfs/fastcdc-go"
)

// Chunking sets the content-defined chunk sizes for file contents. The zero value means the
// defaults: min 256 KiB, average 1 MiB, max 4 MiB. Keep them stable for a repository:
// different sizes cut different chunks and deduplicate poorly against older snapshots.
type Chunking struct {
	Min, Avg, Max int
}

// DefaultChunking is what the zero Chunking stands for.
var DefaultChunking = Chunking{Min: 256 << 10, Avg: 1 << 20, Max: 4 << 20}

func (c Chunking) resolve() (Chunking, error) {
	if c == (Chunking{}) {
		return DefaultChunking, nil
	}
	if c.Min < 64 || c.Min >= c.Avg || c.Avg >= c.Max || c.Max > 1<<30 {
		return c, fmt.Errorf("chunk sizes min %d / avg %d / max %d: want 64 <= min < avg < max <= 1 GiB", c.Min, c.Avg, c.Max)
	}
	return c, nil
}

// chunkerOptions are the FastCDC options for a file of the given size. For a file no larger
// than Max the chunker's buffer is cut down to the file: every cut point lies within the file
// then, so the chunks are exactly those of the full-size chunker while a 300 KiB file no
// longer costs an 8 MiB buffer.
//
// fastcdc-go XORs its package-level gear table with the seed in every NewChunker call; with
// seed 0 the table stays intact but the write is a data race against any chunker running in
// another goroutine. All chunking therefore happens in the single chunker goroutine.
func (c Chunking) chunkerOptions(size int64) fastcdc.Options {
	// BufSize Max+1 (the library's least; it does not change the cuts) instead of its default 2x:
	// one buffer per file is live, and 4 MiB less of it on a memory-starved host is worth a
	// copy of the unread rest before each chunk.
	o := fastcdc.Options{MinSize: c.Min, AverageSize: c.Avg, MaxSize: c.Max, BufSize: c.Max + 1}
	if size < int64(c.Max) {
		o.MaxSize = max(c.Avg+1, int(size))
		o.BufSize = o.MaxSize + 1
	}
	return o
}
