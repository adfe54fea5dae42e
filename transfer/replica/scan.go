package replica

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// block is one fixed-size block of a file being scanned.
type block struct {
	index  int64
	off    int64
	n      int
	zero   bool // a hole, or data that reads back all zeros
	data   []byte
	fast   fastHash         // of the block's bytes with the scanner's seed
	strong [StrongSize]byte // only when the scanner computes strong hashes
	remote fastHash         // client: the far side's fast hash of the block
}

// scanner walks the blocks of a file in order with one goroutine (which maps holes and hands out
// buffers) and reads and hashes them on several: on a cached or fast disk the copy out of the
// kernel costs as much as the hashing, so both run at the speed of all cores, while the reads
// stay nearly sequential and memory stays at a few buffers.
type scanner struct {
	r     io.ReaderAt
	name  string  // of the source, for messages
	holes holeMap // nil: every block is read
	// visit, when set, skips blocks: it returns the first block at or after i to scan (the
	// block count when none is left).
	visit     func(i int64) (int64, error)
	size      int64
	bs        int64
	workers   int
	zeroes    *zeroHashes  // its seed seeds the fast hashes
	strong    bool         // compute strong hashes too
	bytesRead atomic.Int64 // bytes actually read (holes are not)
}

// run scans every block. before runs in the walker, in block order, before a block is handed out
// and before its data is read (the client pairs it with the far side's hash there). work runs
// concurrently on up to s.workers goroutines with the block read and hashed; it must not keep
// b.data.
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
				if b.data != nil {
					if _, err := s.r.ReadAt(b.data, b.off); err != nil {
						cancel(fmt.Errorf("read %s at %d: %w", s.name, b.off, err))
					} else {
						s.bytesRead.Add(int64(b.n))
					}
				}
				if ctx.Err() == nil {
					s.hash(b, zeroBuf)
					if err := work(b); err != nil {
						cancel(err)
					}
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

func (s *scanner) hash(b *block, zeroBuf []byte) {
	if !b.zero && bytes.Equal(b.data, zeroBuf[:b.n]) {
		b.zero = true
	}
	if b.zero {
		z := s.zeroes.get(b.n)
		b.fast, b.strong = z.fast, z.strong
		return
	}
	b.fast = fastSum(b.data, s.zeroes.seed)
	if s.strong {
		b.strong = strongSum(b.data)
	}
}

func (s *scanner) read(ctx context.Context, pool chan []byte, jobs chan<- *block, before func(*block) error) error {
	count := blockCount(s.size, s.bs)
	for i := int64(0); i < count; i++ {
		if s.visit != nil {
			next, err := s.visit(i)
			if err != nil {
				return err
			}
			if i = next; i >= count {
				break
			}
		}
		b := &block{index: i, off: i * s.bs, n: blockLen(i, s.size, s.bs)}
		hole := false
		if s.holes != nil {
			var err error
			if hole, err = s.holes.hole(b.off, b.n); err != nil {
				return err
			}
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
