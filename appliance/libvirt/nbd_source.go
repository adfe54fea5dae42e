package libvirt

import (
	"context"
	"sync"

	"github.com/snapferry/snapferry/transfer/nbd"
)

// readAheadBytes bounds the reads a source keeps in flight ahead of the backup, whatever the
// repository's block size: memory stays flat, and QEMU's NBD server has work across the round
// trips that made one request at a time slow.
const readAheadBytes = 16 << 20

// nbdSource is a disk.Source over an NBD export: Next walks the export's block status in the
// context that decides what to read (base:allocation for a full backup: data that is neither a
// hole nor zeros; a dirty bitmap for an incremental: extents marked dirty; none: everything).
//
// disk.BackupSource reads every repository block that a range Next returns touches, in order,
// one block at a time. The blocks it will ask for are therefore known from the ranges: ReadAt
// keeps the next ones requested ahead (pipelined on the one connection), and serves each from
// its read-ahead. A read that was not foreseen is served directly and restarts the read-ahead
// there.
type nbdSource struct {
	ctx     context.Context
	c       *nbd.Client
	context string // "": every byte is wanted, no block status is asked
	want    func(flags uint32) bool
	block   int64 // the repository's block size: the reads BackupSource makes
	depth   int   // reads kept in flight

	mu sync.Mutex
	// spans are the wanted ranges found so far (adjacent extents merged) that the reader or the
	// read-ahead have not passed; block status is known up to scanned.
	spans   []span
	scanned int64
	// ahead are the reads in flight, in the order the reader will ask for them; nextBlock is
	// the first block the read-ahead has not considered yet.
	ahead     []*pending
	nextBlock int64
	free      [][]byte
}

type span struct{ start, end int64 }

type pending struct {
	off int64
	buf []byte
	r   *nbd.Read
	err error // StartRead's
}

func newSource(ctx context.Context, c *nbd.Client, blockSize int, cname string, want func(uint32) bool) *nbdSource {
	b := int64(blockSize)
	if b <= 0 {
		b = 1 << 20
	}
	return &nbdSource{ctx: ctx, c: c, context: cname, want: want, block: b, depth: int(max(2, min(nbd.Window, readAheadBytes/b)))}
}

func newFullSource(ctx context.Context, c *nbd.Client, blockSize int) *nbdSource {
	return newSource(ctx, c, blockSize, nbd.ContextAllocation, func(f uint32) bool { return f&(nbd.StateHole|nbd.StateZero) == 0 })
}

func newDirtySource(ctx context.Context, c *nbd.Client, blockSize int, bitmapContext string) *nbdSource {
	return newSource(ctx, c, blockSize, bitmapContext, func(f uint32) bool { return f&nbd.StateDirty != 0 })
}

// newWholeSource reads every byte of an export that tells no block status.
func newWholeSource(ctx context.Context, c *nbd.Client, blockSize int) *nbdSource {
	return newSource(ctx, c, blockSize, "", nil)
}

func (s *nbdSource) Size() int64 { return s.c.Size() }

// Next returns the first wanted range at or after off.
func (s *nbdSource) Next(ctx context.Context, off int64) (int64, int64, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The reader asks with increasing offsets: spans before off are done with.
	for len(s.spans) > 0 && s.spans[0].end <= off {
		s.spans = s.spans[1:]
	}
	sp, ok, err := s.spanAt(ctx, off)
	if err != nil || !ok {
		return 0, 0, false, err
	}
	return max(sp.start, off), sp.end, true, nil
}

// spanAt returns the first wanted span that ends after off, asking block status as far as
// needed. The spans kept are those between the reader and the read-ahead, and one answer's.
func (s *nbdSource) spanAt(ctx context.Context, off int64) (span, bool, error) {
	for {
		for _, sp := range s.spans {
			if sp.end > off {
				return sp, true, nil
			}
		}
		if s.scanned >= s.Size() {
			return span{}, false, nil
		}
		if err := s.scan(ctx); err != nil {
			return span{}, false, err
		}
	}
}

// scan asks block status for what follows s.scanned and adds the wanted extents to spans.
func (s *nbdSource) scan(ctx context.Context) error {
	size := s.Size()
	if s.context == "" {
		s.add(s.scanned, size)
		s.scanned = size
		return nil
	}
	ext, err := s.c.BlockStatus(ctx, s.context, uint64(s.scanned), uint64(size-s.scanned))
	if err != nil {
		return err
	}
	for _, e := range ext {
		end := min(int64(e.Offset+e.Length), size)
		if s.want(e.Flags) {
			s.add(int64(e.Offset), end)
		}
		s.scanned = end
	}
	return nil
}

func (s *nbdSource) add(start, end int64) {
	if n := len(s.spans); n > 0 && s.spans[n-1].end == start {
		s.spans[n-1].end = end
		return
	}
	s.spans = append(s.spans, span{start, end})
}

// ReadAt serves the reader's block reads from the read-ahead.
func (s *nbdSource) ReadAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ahead) == 0 || s.ahead[0].off != off || len(s.ahead[0].buf) != len(p) {
		// Not foreseen (the first read, or a reader that skips): drop what is in flight and go
		// on from here when this is a block read; anything else is read directly.
		s.drain()
		if off%s.block != 0 || int64(len(p)) > s.block {
			return s.c.ReadAtContext(s.ctx, p, off)
		}
		s.nextBlock = off / s.block
	}
	s.fill()
	if len(s.ahead) == 0 || s.ahead[0].off != off {
		// The read-ahead found no wanted range here: the reader reads outside them.
		return s.c.ReadAtContext(s.ctx, p, off)
	}
	pd := s.ahead[0]
	s.ahead = s.ahead[1:]
	err := pd.wait(s.ctx)
	n := 0
	if err == nil {
		n = copy(p, pd.buf)
	}
	s.free = append(s.free, pd.buf[:cap(pd.buf)])
	s.fill()
	return n, err
}

// fill starts reads of the next blocks the reader will ask for until depth are in flight.
// It stops quietly at a block status error: Next reports it.
func (s *nbdSource) fill() {
	size := s.Size()
	for len(s.ahead) < s.depth && s.nextBlock*s.block < size {
		sp, ok, err := s.spanAt(s.ctx, s.nextBlock*s.block)
		if err != nil || !ok {
			return
		}
		i := max(s.nextBlock, sp.start/s.block)
		s.nextBlock = i + 1
		off := i * s.block
		buf := s.buffer(min(s.block, size-off))
		r, err := s.c.StartRead(s.ctx, buf, off)
		s.ahead = append(s.ahead, &pending{off: off, buf: buf, r: r, err: err})
		if err != nil {
			return
		}
	}
}

func (s *nbdSource) buffer(n int64) []byte {
	if k := len(s.free); k > 0 {
		b := s.free[k-1]
		s.free = s.free[:k-1]
		return b[:n]
	}
	return make([]byte, n, s.block)
}

// drain waits for the reads in flight (their buffers are written until they complete) and
// forgets them.
func (s *nbdSource) drain() {
	for _, pd := range s.ahead {
		_ = pd.wait(s.ctx)
		s.free = append(s.free, pd.buf[:cap(pd.buf)])
	}
	s.ahead = nil
}

func (pd *pending) wait(ctx context.Context) error {
	if pd.err != nil {
		return pd.err
	}
	return pd.r.Wait(ctx)
}
