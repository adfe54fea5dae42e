package tree

import "context"

// chunkPool hands out the buffers that carry chunks of large files from the chunker to the
// workers. At most n are out at once (the chunker waits for one), which bounds the memory in
// flight. Buffers are sized for a typical chunk (2x the average, not the 4 MiB maximum: FastCDC
// with normalisation cuts most chunks near the average) and reused; a rarer bigger chunk gets a
// buffer of its own that is dropped after use. Fixed Max-sized buffers pinned 16 MiB on a
// 2-core host, most of it never written.
type chunkPool struct {
	out  chan struct{} // one token per buffer handed out
	free chan []byte   // pool-sized buffers ready for reuse
	size int
}

func newChunkPool(n, size int) *chunkPool {
	return &chunkPool{out: make(chan struct{}, n), free: make(chan []byte, n), size: size}
}

// get returns a buffer of length n, waiting while n buffers are out.
func (p *chunkPool) get(ctx context.Context, n int) ([]byte, error) {
	select {
	case p.out <- struct{}{}:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	if n > p.size {
		return make([]byte, n), nil
	}
	select {
	case b := <-p.free:
		return b[:n], nil
	default:
		return make([]byte, n, p.size), nil
	}
}

// put gives back a buffer from get.
func (p *chunkPool) put(b []byte) {
	if cap(b) == p.size {
		select {
		case p.free <- b:
		default:
		}
	}
	<-p.out
}
