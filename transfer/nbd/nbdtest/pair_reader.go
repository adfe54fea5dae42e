package nbdtest

import (
	"bytes"
	"sync"
	"time"
)

// PairReader is an io.ReaderAt over Data that holds each ReadAt until a second one is in flight
// at the same time (or Wait has passed, so a reader that never overlaps only slows down), and
// counts the most it saw at once. A test serving it through an NBD server shows that requests
// were pipelined by the client and served concurrently by the server.
type PairReader struct {
	Data []byte
	Wait time.Duration // default 10 s

	mu       sync.Mutex
	inFlight int
	most     int
	pair     chan struct{}
	once     sync.Once
}

// ReadAt implements io.ReaderAt.
func (g *PairReader) ReadAt(p []byte, off int64) (int, error) {
	g.mu.Lock()
	if g.pair == nil {
		g.pair = make(chan struct{})
	}
	g.inFlight++
	g.most = max(g.most, g.inFlight)
	pair := g.pair
	if g.inFlight >= 2 {
		g.once.Do(func() { close(g.pair) })
	}
	g.mu.Unlock()
	wait := g.Wait
	if wait <= 0 {
		wait = 10 * time.Second
	}
	t := time.NewTimer(wait)
	select {
	case <-pair:
	case <-t.C:
	}
	t.Stop()
	g.mu.Lock()
	g.inFlight--
	g.mu.Unlock()
	return bytes.NewReader(g.Data).ReadAt(p, off)
}

// Most is the largest number of ReadAt calls seen in flight at once.
func (g *PairReader) Most() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.most
}
