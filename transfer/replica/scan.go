package replica

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"

	"lukechampine.com/blake3"
)

// block is one fixed-size block of a file being scanned.
type block struct {
	index  int64
	off    int64
	n      int
	zero   bool // a hole, or data that reads back all zeros
	data   []byte
	hash   [HashSize]byte // of the block's bytes; zeroHash(n) when zero
	remote [HashSize]byte // client: the far side's hash of the block
}

// scanner reads the blocks of a file in order with one goroutine (sequential reads suit disks
// and caches) and hashes them on several, so hashing runs at the speed of all cores while memory
// stays at a few buffers.
type scanner struct {
	f         *os.File
	size      int64
	bs        int64
	workers   int
	zeroes    *zeroHashes
	bytesRead int64 // bytes actually read (holes are not); valid after run
}

// run scans every block. before runs in the reader, in block order, before a block is handed out
// (the client pairs it with the far side's hash there). work runs concurrently on up to
// s.workers goroutines with the block filled in and hashed; it must not keep b.data.
func (s *scanner) run(ctx context.Context, before func(*block) error, work func(*block) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	workers := max(s.workers, 1)
	pool := make(chan []byte, workers+2)
	for i := 0; i < cap(pool); i++ {
		pool <- make([]byte, s.bs)
	}
	jobs := make(chan *block, workers)
	var wg sync.WaitGroup
	zeroBuf := make([]byte, s.bs)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range jobs {
				if !b.zero && bytes.Equal(b.data, zeroBuf[:b.n]) {
					b.zero = true
				}
				if b.zero {
					b.hash = s.zeroes.get(b.n)
				} else {
					b.hash = blake3.Sum256(b.data)
				}
				if err := work(b); err != nil {
					cancel(err)
				}
				if b.data != nil {
					pool <- b.data[:cap(b.data)]
				}
			}
		}()
	}
	err := s.read(ctx, pool, jobs, before)
	close(jobs)
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil && cause != context.Canceled {
		return cause
	}
	if err != nil {
		return err
	}
	return ctx.Err()
}

func (s *scanner) read(ctx context.Context, pool chan []byte, jobs chan<- *block, before func(*block) error) error {
	dm := newDataMap(s.f, s.size)
	count := blockCount(s.size, s.bs)
	for i := int64(0); i < count; i++ {
		b := &block{index: i, off: i * s.bs, n: blockLen(i, s.size, s.bs)}
		hole, err := dm.hole(b.off, b.n)
		if err != nil {
			return err
		}
		if hole {
			b.zero = true
		} else {
			select {
			case b.data = <-pool:
			case <-ctx.Done():
				return nil
			}
			b.data = b.data[:b.n]
			if _, err := s.f.ReadAt(b.data, b.off); err != nil {
				return fmt.Errorf("read %s at %d: %w", s.f.Name(), b.off, err)
			}
			s.bytesRead += int64(b.n)
		}
		if before != nil {
			if err := before(b); err != nil {
				return err
			}
		}
		select {
		case jobs <- b:
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

// zeroHashes caches the hash of an all-zero block per length (a file has at most two lengths).
type zeroHashes struct {
	mu sync.Mutex
	m  map[int][HashSize]byte
}

func (z *zeroHashes) get(n int) [HashSize]byte {
	z.mu.Lock()
	defer z.mu.Unlock()
	if h, ok := z.m[n]; ok {
		return h
	}
	if z.m == nil {
		z.m = make(map[int][HashSize]byte)
	}
	h := blake3.Sum256(make([]byte, n))
	z.m[n] = h
	return h
}
