package replica

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

	"github.com/snapferry/snapferry/images/repo"

	"github.com/snapferry/snapferry/transfer/wire"
)

// File is one file of a replica set.
type File struct {
	Name   string // path below the set on the far side, e.g. "vm1-flat.vmdk"
	Source string // the local file (or block device) to copy
	// Disk files are updated in place block by block; other files (descriptors, .vmx, .nvram)
	// are sent whole and replaced atomically.
	Disk bool
	// Blocks, when set, is read instead of Source: a disk that is not a local file (a VM disk
	// exported over NBD). Only the ranges its Next returns are read; the rest reads as zeros.
	Blocks BlockSource
	// Changed, when set with Blocks, lists the only ranges that may differ from the disk as it
	// was when the update that reported Base (DiskReport.Mark) ran: a dirty bitmap. If the far
	// file's mark is still Base, only the blocks these ranges touch are read and sent, without
	// comparing hashes; otherwise (the far copy was started, edited or removed, the disk was
	// resized, or the far side cannot tell) the disk is compared whole and DiskReport.Why says
	// why.
	Changed Extents
	Base    Mark
}

// Extents lists ranges of a disk in increasing order: Next returns the first range [start, end)
// that ends after off, or ok=false when none follows.
type Extents interface {
	Next(ctx context.Context, off int64) (start, end int64, ok bool, err error)
}

// BlockSource is a disk read through something other than a local file. Next lists where
// its data may be (everything else reads as zeros); images/disk.Source has the same shape.
type BlockSource interface {
	io.ReaderAt
	Extents
	Size() int64
}

// DiskReport says how one disk file of a Push went (Options.DiskDone).
type DiskReport struct {
	Name string
	// Mark is the far file's mark once the update commits: name it as File.Base in the next
	// Push (with the ranges changed since this one) to send only those. Zero when the far side
	// does not report marks (an older snapferry there).
	Mark Mark
	// Incremental: only the File.Changed ranges were read and sent.
	Incremental bool
	// Why a file with Changed ranges was compared whole.
	Why string
}

// Options tune Push. Zero values take the defaults.
type Options struct {
	BlockSize int64 // 0: BlockSizeFor each file's size; the far side rebuilds its hashes when it changes
	Workers   int   // hashing and compressing goroutines; GOMAXPROCS, at most 4
	// Level is the zstd level for changed blocks; zstd.SpeedFastest, as for repository blobs:
	// on a LAN the link outruns the compressor at higher levels.
	Level zstd.EncoderLevel
	// Compression is backup's --compression word for changed blocks: "" or auto (zstd at
	// Level), fast (S2), max (zstd's better level), off (raw).
	Compression repo.Compression
	// Progress, when set, gets the running totals after every 256 blocks and every file, from
	// one goroutine at a time. It must return quickly.
	Progress func(Stats)
	// Marks: the far side announced wire.CapReplicaMark, so it answers OpRepMark and reports
	// marks. Without it File.Changed is ignored (every disk is compared whole).
	Marks bool
	// DiskDone, when set, gets the report of each disk file once its blocks were written
	// (before the update commits).
	DiskDone func(DiskReport)
}

// Stats count what a Push did; the benchmark reports them.
type Stats struct {
	Files         int           `json:"files"`          // files pushed (disk and small)
	BytesScanned  int64         `json:"bytes_scanned"`  // apparent size of the disk files
	BytesRead     int64         `json:"bytes_read"`     // bytes of disk files read and hashed (holes are not read)
	BlocksChanged int64         `json:"blocks_changed"` // blocks sent, data or zero
	ZeroBlocks    int64         `json:"zero_blocks"`    // changed blocks that became holes on the far side
	BytesChanged  int64         `json:"bytes_changed"`  // uncompressed bytes of the changed data blocks
	BytesSent     int64         `json:"bytes_sent"`     // bytes of block records and small files put on the link
	Elapsed       time.Duration `json:"elapsed_ns"`
}

// Push brings the replica set on the far side of sess up to date with files, as one update: it
// either commits whole or the far side rolls back to the previous replica. set is the folder
// below the server's root that holds the replica.
func Push(ctx context.Context, sess *wire.Session, set string, files []File, opts Options) (Stats, error) {
	start := time.Now()
	if opts.BlockSize != 0 && (opts.BlockSize < MinBlockSize || opts.BlockSize > MaxBlockSize) {
		return Stats{}, fmt.Errorf("replica block size %d out of range %d..%d", opts.BlockSize, MinBlockSize, MaxBlockSize)
	}
	if opts.Workers <= 0 {
		// A big ESXi host has dozens of cores but a small memory pool for the shell; four
		// workers already outrun the disk with the fast hash.
		opts.Workers = min(runtime.GOMAXPROCS(0), 4)
	}
	if opts.Level == 0 {
		opts.Level = zstd.SpeedFastest
		if opts.Compression == repo.CompressionMax {
			opts.Level = zstd.SpeedBetterCompression
		}
	}
	p := &pusher{sess: sess, set: set, opts: opts}
	if err := p.call(ctx, wire.OpRepBegin, beginArgs{Set: set}.encode()); err != nil {
		return Stats{}, fmt.Errorf("begin replica update of %s: %w", set, err)
	}
	err := p.pushAll(ctx, files)
	if err == nil {
		err = p.call(ctx, wire.OpRepCommit, beginArgs{Set: set}.encode())
		if err != nil {
			err = fmt.Errorf("commit replica update of %s: %w", set, err)
		}
	} else {
		// Roll back now rather than when the session ends; the far side does it anyway if this
		// cannot get through.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		if aerr := p.call(actx, wire.OpRepAbort, beginArgs{Set: set}.encode()); aerr != nil && !errors.Is(aerr, wire.ErrLinkLost) {
			err = fmt.Errorf("%w (and roll back: %v)", err, aerr)
		}
		cancel()
	}
	st := p.stats()
	st.Elapsed = time.Since(start)
	return st, err
}

type pusher struct {
	sess *wire.Session
	set  string
	opts Options

	files                                   int
	scanned, read, changed, zero, raw, sent atomic.Int64
}

func (p *pusher) stats() Stats {
	return Stats{Files: p.files, BytesScanned: p.scanned.Load(), BytesRead: p.read.Load(), BlocksChanged: p.changed.Load(),
		ZeroBlocks: p.zero.Load(), BytesChanged: p.raw.Load(), BytesSent: p.sent.Load()}
}

func (p *pusher) call(ctx context.Context, op wire.Op, args []byte) error {
	st, err := p.sess.Open(ctx, op, args, false)
	if err != nil {
		return err
	}
	defer st.Close()
	_, err = st.Response()
	return err
}

func (p *pusher) pushAll(ctx context.Context, files []File) error {
	for _, f := range files {
		var err error
		if f.Disk {
			err = p.pushDisk(ctx, f)
		} else {
			err = p.putSmall(ctx, f)
		}
		if err != nil {
			return fmt.Errorf("replicate %s to %s/%s: %w", f.Source, p.set, f.Name, err)
		}
		p.files++
		if p.opts.Progress != nil {
			p.opts.Progress(p.stats())
		}
	}
	return nil
}

func openSource(path string) (*os.File, int64, uint32, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, 0, err
	}
	if fi.Mode().IsRegular() {
		return f, fi.Size(), uint32(fi.Mode().Perm()), nil
	}
	size, err := f.Seek(0, io.SeekEnd) // a block device: st_size is 0
	if err != nil {
		f.Close()
		return nil, 0, 0, fmt.Errorf("size of %s: %w", path, err)
	}
	return f, size, 0o600, nil
}

func (p *pusher) putSmall(ctx context.Context, file File) error {
	f, size, mode, err := openSource(file.Source)
	if err != nil {
		return err
	}
	defer f.Close()
	args := fileArgs{Set: p.set, Name: file.Name, BlockSize: p.blockSize(size), Size: size, Mode: mode}
	st, err := p.sess.Open(ctx, wire.OpRepPut, args.encode(), true)
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := io.Copy(st, io.LimitReader(f, size))
	p.sent.Add(n)
	if err != nil {
		if _, rerr := st.Response(); rerr != nil {
			return rerr
		}
		st.CloseWithError(err)
		return err
	}
	if err := st.CloseWrite(); err != nil {
		return err
	}
	_, err = st.Response()
	return err
}

// pushDisk brings one disk file up to date: only the blocks File.Changed touches when the far
// copy still carries File.Base, otherwise every block whose hash differs from the far side's.
func (p *pusher) pushDisk(ctx context.Context, file File) error {
	src, err := openDisk(file)
	if err != nil {
		return err
	}
	defer src.close()
	bs := p.blockSize(src.size)
	args := fileArgs{Set: p.set, Name: file.Name, BlockSize: bs, Size: src.size, Mode: src.mode}
	rep := DiskReport{Name: file.Name}
	if file.Changed != nil && file.Blocks != nil {
		if rep.Why, err = p.checkBase(ctx, args, file.Base); err != nil {
			return err
		}
		rep.Incremental = rep.Why == ""
	}
	var hs *wire.Stream
	var head hashesHeader
	if !rep.Incremental {
		if hs, head, err = p.farHashes(ctx, args); err != nil {
			return err
		}
		defer hs.Close()
	}
	w, err := p.openBlockUpload(ctx, args, bs)
	if err != nil {
		return err
	}
	defer w.close()
	if rep.Incremental {
		err = p.sendDirty(ctx, src, bs, file.Changed, w)
	} else {
		err = p.sendChanged(ctx, src, bs, head, bufio.NewReaderSize(hs, 64<<10), w)
	}
	body, err := w.finish(err)
	if err != nil {
		return err
	}
	if len(body) > 0 {
		if rep.Mark, err = decodeMark(body); err != nil {
			return fmt.Errorf("the far side's mark of %s: %w", file.Name, err)
		}
	}
	if p.opts.DiskDone != nil {
		p.opts.DiskDone(rep)
	}
	return nil
}

// checkBase asks the far side for the file's mark and says why it cannot be updated from base
// with only the changed blocks ("" when it can).
func (p *pusher) checkBase(ctx context.Context, args fileArgs, base Mark) (string, error) {
	if !p.opts.Marks {
		return "the far side's snapferry does not report replica marks (update it there)", nil
	}
	if !base.Exists {
		return "no earlier update of this replica was recorded", nil
	}
	st, err := p.sess.Open(ctx, wire.OpRepMark, args.encode(), false)
	if err != nil {
		return "", err
	}
	defer st.Close()
	resp, err := st.Response()
	if err != nil {
		return "", fmt.Errorf("read the mark of %s/%s: %w", args.Set, args.Name, err)
	}
	m, err := decodeMark(resp.Body)
	if err != nil {
		return "", fmt.Errorf("read the mark of %s/%s: %w", args.Set, args.Name, err)
	}
	switch {
	case !m.Exists:
		return fmt.Sprintf("the replica's %s is missing on the far side", args.Name), nil
	case m != base:
		return fmt.Sprintf("the replica's %s changed on the far side since the last update (started, edited, or written by another run)", args.Name), nil
	case m.Size != args.Size:
		return fmt.Sprintf("the disk was resized from %d to %d bytes", m.Size, args.Size), nil
	}
	return "", nil
}

// diskSource is an opened disk file or BlockSource.
type diskSource struct {
	r     io.ReaderAt
	name  string
	size  int64
	mode  uint32
	holes func(ctx context.Context) holeMap
	close func()
}

func openDisk(file File) (*diskSource, error) {
	if file.Blocks != nil {
		b := file.Blocks
		return &diskSource{r: b, name: file.Name, size: b.Size(), mode: 0o600, close: func() {},
			holes: func(ctx context.Context) holeMap { return &extentCursor{ctx: ctx, x: b} }}, nil
	}
	f, size, mode, err := openSource(file.Source)
	if err != nil {
		return nil, err
	}
	return &diskSource{r: f, name: f.Name(), size: size, mode: mode, close: func() { f.Close() },
		holes: func(context.Context) holeMap { return newDataMap(f, size) }}, nil
}

// farHashes opens the stream of the far side's block hashes of a file and reads its header.
func (p *pusher) farHashes(ctx context.Context, args fileArgs) (*wire.Stream, hashesHeader, error) {
	hs, err := p.sess.Open(ctx, wire.OpRepHashes, args.encode(), false)
	if err != nil {
		return nil, hashesHeader{}, err
	}
	resp, err := hs.Response()
	if err == nil {
		var head hashesHeader
		if head, err = decodeHashesHeader(resp.Body); err == nil {
			return hs, head, nil
		}
	}
	hs.Close()
	return nil, hashesHeader{}, fmt.Errorf("get hashes of the replica: %w", err)
}

// blockUpload is the upload stream of one disk's changed blocks, compressed one by one.
type blockUpload struct {
	ws   *wire.Stream
	enc  *zstd.Encoder
	out  *recordSink
	bufs sync.Pool
}

func (p *pusher) openBlockUpload(ctx context.Context, args fileArgs, bs int64) (*blockUpload, error) {
	ws, err := p.sess.Open(ctx, wire.OpRepWrite, args.encode(), true)
	if err != nil {
		return nil, err
	}
	// Blocks are compressed one by one, so a window of one block is all zstd can use; the
	// smaller window and lower-memory mode keep each worker's encoder to a few MiB.
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(p.opts.Level), zstd.WithEncoderConcurrency(p.opts.Workers),
		zstd.WithWindowSize(windowFor(bs)), zstd.WithLowerEncoderMem(true))
	if err != nil {
		ws.Close()
		return nil, err
	}
	w := &blockUpload{ws: ws, enc: enc, out: &recordSink{bw: bufio.NewWriterSize(ws, 256<<10)}}
	w.bufs.New = func() any { return make([]byte, 0, s2.MaxEncodedLen(int(bs))) }
	return w, nil
}

func (w *blockUpload) close() {
	w.enc.Close()
	w.ws.Close()
}

// finish ends the upload after sendChanged returned err: flush and wait for the far side's
// answer (its body is the file's mark), or abort with the far side's reason when it has one.
func (w *blockUpload) finish(err error) ([]byte, error) {
	if err == nil {
		err = w.out.flush()
	}
	if err != nil {
		if _, rerr := w.ws.Response(); rerr != nil {
			return nil, rerr // the far side's reason explains ours
		}
		w.ws.CloseWithError(err)
		return nil, err
	}
	if err := w.ws.CloseWrite(); err != nil {
		return nil, err
	}
	resp, err := w.ws.Response()
	return resp.Body, err
}

// progressAt reports progress every 256 blocks of a file's scan: the totals so far plus this
// file's counts (they join the totals when the file is done).
func (p *pusher) progressAt(sc *scanner, b *block) {
	if p.opts.Progress == nil || b.index%256 != 255 {
		return
	}
	st := p.stats()
	st.BytesScanned += b.off
	st.BytesRead += sc.bytesRead.Load()
	p.opts.Progress(st)
}

// sendChanged scans the file, compares each block's fast hash with the far side's (read from
// remote in block order; blocks past the far file's end compare with a hole) and writes a record
// for each block that differs.
func (p *pusher) sendChanged(ctx context.Context, src *diskSource, bs int64, head hashesHeader, remote *bufio.Reader, w *blockUpload) error {
	zeroes := newZeroHashes(head.Seed)
	size := src.size
	sc := &scanner{r: src.r, name: src.name, holes: src.holes(ctx), size: size, bs: bs, workers: p.opts.Workers, zeroes: zeroes}
	err := sc.run(ctx, func(b *block) error {
		p.progressAt(sc, b)
		if b.index < head.Count {
			if _, err := io.ReadFull(remote, b.remote[:]); err != nil {
				return fmt.Errorf("read hashes of the replica: %w", err)
			}
		} else {
			b.remote = zeroes.get(b.n).fast // the far side grows the file with holes
		}
		return nil
	}, func(b *block) error {
		if b.fast == b.remote {
			return nil
		}
		return p.sendBlock(b, w)
	})
	p.read.Add(sc.bytesRead.Load())
	p.scanned.Add(size)
	return err
}

// sendDirty sends every block the changed ranges touch, read whole (blocks in holes of the
// source as zero records), without asking the far side for hashes: the far copy equals the
// source everywhere else (checkBase).
func (p *pusher) sendDirty(ctx context.Context, src *diskSource, bs int64, changed Extents, w *blockUpload) error {
	sc := &scanner{r: src.r, name: src.name, holes: src.holes(ctx), size: src.size, bs: bs, workers: p.opts.Workers,
		zeroes: newZeroHashes(0), visit: visitExtents(ctx, changed, src.size, bs)}
	err := sc.run(ctx, func(b *block) error {
		p.progressAt(sc, b)
		return nil
	}, func(b *block) error { return p.sendBlock(b, w) })
	p.read.Add(sc.bytesRead.Load())
	p.scanned.Add(src.size)
	return err
}

// sendBlock writes one changed block: a hole record, or its data compressed (raw when that
// does not shrink it).
func (p *pusher) sendBlock(b *block, w *blockUpload) error {
	p.changed.Add(1)
	rec := record{kind: recZero, index: b.index}
	if b.zero {
		p.zero.Add(1)
	} else {
		p.raw.Add(int64(b.n))
		pooled := w.bufs.Get().([]byte)
		defer func() { w.bufs.Put(pooled[:0]) }()
		var buf []byte
		rec.kind, rec.hash = recZstd, strongSum(b.data)
		switch p.opts.Compression {
		case repo.CompressionFast:
			buf, rec.kind = s2.Encode(pooled[:cap(pooled)], b.data), recS2
		case repo.CompressionOff:
			buf = b.data
		default:
			buf = w.enc.EncodeAll(b.data, pooled[:0])
		}
		rec.payload = buf
		if len(buf) >= b.n {
			rec.kind, rec.payload = recRaw, b.data
		}
	}
	n, err := w.out.write(rec)
	p.sent.Add(int64(n))
	return err
}

// windowFor is the smallest zstd window (a power of two, at least 1 KiB) that holds a block.
// maxHashBlocks bounds the blocks of one file under the automatic block size: the far side sends
// 16 bytes of hashes per block on every run, so 2^20 blocks cost 16 MiB of download and sidecar.
const maxHashBlocks = 1 << 20

// BlockSizeFor is the automatic block size for a file of size bytes: the smallest power of two
// from MinBlockSize up that keeps the file within maxHashBlocks blocks. Like rsync's block size
// it grows with the file, but only where the hash list would get big: disks up to 64 GiB get
// 64 KiB blocks, so a guest's scattered small writes send little more than what they wrote; a
// 2 TiB disk gets 2 MiB blocks and a 16 MiB hash list.
func BlockSizeFor(size int64) int64 {
	bs := int64(MinBlockSize)
	for bs < MaxBlockSize && (size+bs-1)/bs > maxHashBlocks {
		bs <<= 1
	}
	return bs
}

// blockSize is the block size for a file of size bytes: Options.BlockSize or the automatic one.
func (p *pusher) blockSize(size int64) int64 {
	if p.opts.BlockSize != 0 {
		return p.opts.BlockSize
	}
	return BlockSizeFor(size)
}

func windowFor(bs int64) int {
	w := 1 << 10
	for int64(w) < bs {
		w <<= 1
	}
	return w
}

// recordSink serialises block records from the workers onto the upload stream.
type recordSink struct {
	mu  sync.Mutex
	bw  *bufio.Writer
	hdr []byte
}

func (s *recordSink) write(r record) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hdr = appendRecordHead(s.hdr[:0], r)
	if _, err := s.bw.Write(s.hdr); err != nil {
		return 0, err
	}
	if _, err := s.bw.Write(r.payload); err != nil {
		return len(s.hdr), err
	}
	return len(s.hdr) + len(r.payload), nil
}

func (s *recordSink) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bw.Flush()
}
