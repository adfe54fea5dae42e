package libvirt

import (
	"context"
	"sync"

	"github.com/snapferry/snapferry/transfer/nbd"
)

// readAheadBytes bounds the reads a source keeps in flight ahead of the backup, whatever the
// repository's block size: memory stays flat, and QEMU's NBD server has work across the round
// trips that made one request at a time slow.
const readAheadBytes = 8 << 20

// nbdSource is a disk.Source over an NBD export: Next walks the export's block status in the
// context that decides what to read (base:allocation for a full backup: data that is neither a
// hole nor zeros; a dirty bitmap for an incremental: extents marked dirty; none: everything).
//
// disk.BackupSource reads every repository block that a range Next returns touches, in order,
// one block at a time; with partial (disk.SourceOptions.PartialBlocks, a dirty bitmap over a
// parent) a block the ranges cover in part is read as its pieces (the ranges clipped to the
// block), in order. The reads it will make are therefore known from the ranges: ReadAt keeps the
// next ones requested ahead (pipelined on the one connection), and serves each from its
// read-ahead. A read that was not foreseen restarts the read-ahead at its block, or is served
// directly.
type nbdSource struct {
	ctx     context.Context
	c       *nbd.Client
	context string // "": every byte is wanted, no block status is asked
	want    func(flags uint32) bool
	block   int64 // the repository's block size: the reads BackupSource makes
	partial bool  // BackupSource reads the pieces of blocks the ranges cover in part
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
	// unforeseen counts reads the read-ahead had not asked for, fromAhead the reads it served
	// (tests check the first stays 0 and the second is not).
	unforeseen, fromAhead int
}

type span struct{ start, end int64 }

type pending struct {
	off int64
	buf []byte
	r   *nbd.Read
	err error // StartRead's
}

// newSource makes a source for a reader of blockSize blocks (disk.BackupSource); blockSize 0
// turns the read-ahead off: each ReadAt is one request of its own (replicas read in their own
// pattern, several goroutines at once, which the client pipelines as they come).
func newSource(ctx context.Context, c *nbd.Client, blockSize int, cname string, want func(uint32) bool) *nbdSource {
	s := &nbdSource{ctx: ctx, c: c, context: cname, want: want, block: 1}
	if blockSize > 0 {
		s.block = int64(blockSize)
		s.depth = int(max(2, min(nbd.Window, readAheadBytes/s.block)))
	}
	return s
}

func newFullSource(ctx context.Context, c *nbd.Client, blockSize int) *nbdSource {
	return newSource(ctx, c, blockSize, nbd.ContextAllocation, func(f uint32) bool { return f&(nbd.StateHole|nbd.StateZero) == 0 })
}

// newDirtySource reads the extents a dirty bitmap marks; partial matches
// disk.SourceOptions.PartialBlocks.
func newDirtySource(ctx context.Context, c *nbd.Client, blockSize int, bitmapContext string, partial bool) *nbdSource {
	s := newSource(ctx, c, blockSize, bitmapContext, func(f uint32) bool { return f&nbd.StateDirty != 0 })
	s.partial = partial
	return s
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

// ReadAt serves the reader's reads from the read-ahead.
func (s *nbdSource) ReadAt(p []byte, off int64) (int, error) {
	if s.depth == 0 {
		return s.c.ReadAtContext(s.ctx, p, off)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.find(off, len(p))
	if k < 0 {
		// Not foreseen (the first read, or a reader that skips): start again at its block.
		if len(s.ahead) > 0 {
			s.unforeseen++
		}
		s.drain(len(s.ahead))
		s.nextBlock = off / s.block
		s.fill()
		if k = s.find(off, len(p)); k < 0 {
			return s.c.ReadAtContext(s.ctx, p, off)
		}
	}
	s.drain(k)
	pd := s.ahead[0]
	s.ahead = s.ahead[1:]
	s.fromAhead++
	s.fill()
	err := pd.wait(s.ctx)
	n := 0
	if err == nil {
		n = copy(p, pd.buf)
	}
	s.free = append(s.free, pd.buf[:cap(pd.buf)])
	return n, err
}

// find returns the position of the read of n bytes at off in the read-ahead, or -1.
func (s *nbdSource) find(off int64, n int) int {
	for k, pd := range s.ahead {
		if pd.off == off && len(pd.buf) == n {
			return k
		}
		if pd.off > off {
			break
		}
	}
	return -1
}

// fill starts the next reads the reader will make until depth are in flight. It stops quietly
// at a block status error: Next reports it.
func (s *nbdSource) fill() {
	for len(s.ahead) < s.depth {
		reads, ok, err := s.blockReads()
		if err != nil || !ok {
			return
		}
		for _, rd := range reads {
			buf := s.buffer(rd.end - rd.start)
			r, err := s.c.StartRead(s.ctx, buf, rd.start)
			s.ahead = append(s.ahead, &pending{off: rd.start, buf: buf, r: r, err: err})
			if err != nil {
				return
			}
		}
	}
}

// blockReads returns the reads the reader makes of the first block it reads at or after
// nextBlock (the whole block, or its pieces when partial), and moves nextBlock past it.
func (s *nbdSource) blockReads() ([]span, bool, error) {
	size := s.Size()
	if s.nextBlock*s.block >= size {
		return nil, false, nil
	}
	sp, ok, err := s.spanAt(s.ctx, s.nextBlock*s.block)
	if err != nil || !ok {
		return nil, false, err
	}
	i := max(s.nextBlock, sp.start/s.block)
	s.nextBlock = i + 1
	whole := span{i * s.block, min((i+1)*s.block, size)}
	if !s.partial {
		return []span{whole}, true, nil
	}
	for s.scanned < whole.end {
		if err := s.scan(s.ctx); err != nil {
			return nil, false, err
		}
	}
	var pieces []span
	var covered int64
	for _, sp := range s.spans {
		if sp.end <= whole.start || sp.start >= whole.end {
			continue
		}
		pc := span{max(sp.start, whole.start), min(sp.end, whole.end)}
		pieces = append(pieces, pc)
		covered += pc.end - pc.start
	}
	if covered == whole.end-whole.start {
		return []span{whole}, true, nil
	}
	return pieces, true, nil
}

func (s *nbdSource) buffer(n int64) []byte {
	if k := len(s.free); k > 0 {
		b := s.free[k-1]
		s.free = s.free[:k-1]
		return b[:n]
	}
	return make([]byte, n, s.block)
}

// drain waits for the first k reads in flight (their buffers are written until they
// complete) and forgets them.
func (s *nbdSource) drain(k int) {
	for _, pd := range s.ahead[:k] {
		_ = pd.wait(s.ctx)
		s.free = append(s.free, pd.buf[:cap(pd.buf)])
	}
	s.ahead = s.ahead[k:]
}

func (pd *pending) wait(ctx context.Context) error {
	if pd.err != nil {
		return pd.err
	}
	return pd.r.Wait(ctx)
}
