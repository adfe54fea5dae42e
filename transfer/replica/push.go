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
}

// Stats count what a Push did; the benchmark reports them.
type Stats struct {
	Files         int   // files pushed (disk and small)
	BytesScanned  int64 // apparent size of the disk files
	BytesRead     int64 // bytes of disk files read and hashed (holes are not read)
	BlocksChanged int64 // blocks sent, data or zero
	ZeroBlocks    int64 // changed blocks that became holes on the far side
	BytesChanged  int64 // uncompressed bytes of the changed data blocks
	BytesSent     int64 // bytes of block records and small files put on the link
	Elapsed       time.Duration
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

// pushDisk compares one disk file block by block with the far side's hashes and sends the
// blocks that differ.
func (p *pusher) pushDisk(ctx context.Context, file File) error {
	f, size, mode, err := openSource(file.Source)
	if err != nil {
		return err
	}
	defer f.Close()
	bs := p.blockSize(size)
	args := fileArgs{Set: p.set, Name: file.Name, BlockSize: bs, Size: size, Mode: mode}
	hs, err := p.sess.Open(ctx, wire.OpRepHashes, args.encode(), false)
	if err != nil {
		return err
	}
	defer hs.Close()
	resp, err := hs.Response()
	if err != nil {
		return fmt.Errorf("get hashes of the replica: %w", err)
	}
	head, err := decodeHashesHeader(resp.Body)
	if err != nil {
		return fmt.Errorf("get hashes of the replica: %w", err)
	}
	remote := bufio.NewReaderSize(hs, 64<<10)

	ws, err := p.sess.Open(ctx, wire.OpRepWrite, args.encode(), true)
	if err != nil {
		return err
	}
	defer ws.Close()
	// Blocks are compressed one by one, so a window of one block is all zstd can use; the
	// smaller window and lower-memory mode keep each worker's encoder to a few MiB.
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(p.opts.Level), zstd.WithEncoderConcurrency(p.opts.Workers),
		zstd.WithWindowSize(windowFor(bs)), zstd.WithLowerEncoderMem(true))
	if err != nil {
		return err
	}
	defer enc.Close()
	out := &recordSink{bw: bufio.NewWriterSize(ws, 256<<10)}
	zeroes := newZeroHashes(head.Seed)
	sc := &scanner{f: f, size: size, bs: bs, workers: p.opts.Workers, zeroes: zeroes}
	bufs := sync.Pool{New: func() any { return make([]byte, 0, s2.MaxEncodedLen(int(bs))) }}
	err = sc.run(ctx, func(b *block) error {
		if p.opts.Progress != nil && b.index%256 == 255 {
			st := p.stats() // this file's counts join the totals when it is done
			st.BytesScanned += b.off
			st.BytesRead += sc.bytesRead.Load()
			p.opts.Progress(st)
		}
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
		p.changed.Add(1)
		rec := record{kind: recZero, index: b.index}
		var buf []byte
		if b.zero {
			p.zero.Add(1)
		} else {
			p.raw.Add(int64(b.n))
			pooled := bufs.Get().([]byte)
			defer func() { bufs.Put(pooled[:0]) }()
			rec.kind, rec.hash = recZstd, strongSum(b.data)
			switch p.opts.Compression {
			case repo.CompressionFast:
				buf, rec.kind = s2.Encode(pooled[:cap(pooled)], b.data), recS2
			case repo.CompressionOff:
				buf = b.data
			default:
				buf = enc.EncodeAll(b.data, pooled[:0])
			}
			rec.payload = buf
			if len(buf) >= b.n {
				rec.kind, rec.payload = recRaw, b.data
			}
		}
		n, err := out.write(rec)
		p.sent.Add(int64(n))
		return err
	})
	p.read.Add(sc.bytesRead.Load())
	p.scanned.Add(size)
	if err == nil {
		err = out.flush()
	}
	if err != nil {
		if _, rerr := ws.Response(); rerr != nil {
			return rerr // the far side's reason explains ours
		}
		ws.CloseWithError(err)
		return err
	}
	if err := ws.CloseWrite(); err != nil {
		return err
	}
	if _, err := ws.Response(); err != nil {
		return err
	}
	return nil
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
