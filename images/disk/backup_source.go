package disk

import (
	"context"
	"fmt"
	"io"

	"github.com/snapferry/snapferry/images/pipeline"
	"github.com/snapferry/snapferry/images/progress"
	"github.com/snapferry/snapferry/images/repo"
)

// Source is a disk read through something other than a local file: an NBD export of a running
// VM's disk (transfer/nbd behind appliance/libvirt), with its own map of what to read.
type Source interface {
	io.ReaderAt
	// Size is the disk's size in bytes.
	Size() int64
	// Next returns the first range [start, end) at or after off that must be read, or ok=false
	// when nothing after off needs reading. Without a parent, everything not returned is a
	// hole; with one, it is the parent's data.
	Next(ctx context.Context, off int64) (start, end int64, ok bool, err error)
}

// SourceOptions tune BackupSource.
type SourceOptions struct {
	Name, Device, Format string
	Path                 string // Disk.Path to record
	Workers              int
	Progress             progress.Reporter
	// Parent is the same disk in an earlier snapshot of this repository: blocks that Next does
	// not return keep the parent's blob ids (an incremental that reads only changed extents).
	// Its size must equal the source's. Nil: a full backup, unread blocks are holes.
	Parent *repo.Disk
	// PartialBlocks (with Parent, for a source whose ranges are exact, such as a dirty bitmap):
	// a block the ranges cover only in part is not read whole; its ranges are read over the
	// parent's block, loaded from the repository, and the block is stored as a patch of it when
	// the parent's block is a whole blob. Reads then cost about what changed; the repository
	// pays one block load per such block instead.
	PartialBlocks bool
}

// BackupSource stores src as BackupFile stores a file, reading only the ranges src.Next
// returns (rounded out to whole blocks) and taking the other blocks from opts.Parent. The
// result is a complete disk: restore needs no parent. No fingerprint cache is used: the
// source already knows what changed.
func BackupSource(ctx context.Context, bs repo.BlobStore, src Source, opts SourceOptions) (repo.Disk, repo.Stats, error) {
	blockSize := bs.BlockSize()
	size := src.Size()
	if blockSize <= 0 || size < 0 {
		return repo.Disk{}, repo.Stats{}, fmt.Errorf("back up %s: block size %d, size %d", opts.Name, blockSize, size)
	}
	d := repo.Disk{Name: opts.Name, Path: opts.Path, Device: opts.Device, Format: opts.Format, Size: size, BlockSize: blockSize}
	if d.Format == "" {
		d.Format = "raw"
	}
	b := &diskBackup{
		bs:        bs,
		src:       src,
		extents:   func(off int64) (int64, int64, bool, error) { return src.Next(ctx, off) },
		blockSize: blockSize,
		size:      size,
		nblocks:   (size + int64(blockSize) - 1) / int64(blockSize),
		progress:  progress.OrNop(opts.Progress),
		zero:      make([]byte, blockSize),
		subSize:   subBlockSize(blockSize),
	}
	if opts.Parent != nil {
		p := *opts.Parent
		if p.Size != size || p.BlockSize != blockSize {
			return repo.Disk{}, repo.Stats{}, fmt.Errorf("back up %s: the parent disk has %d bytes in blocks of %d, the source %d in blocks of %d: read it whole", opts.Name, p.Size, p.BlockSize, size, blockSize)
		}
		if err := checkDisk(p); err != nil {
			return repo.Disk{}, repo.Stats{}, err
		}
		b.parent = &parentMap{bs: bs, d: p, chunk: -1}
		b.partial = opts.PartialBlocks
		if ps, ok := bs.(repo.PatchStore); ok && b.partial {
			b.ps, b.patch = ps, ps.PatchesEnabled()
		}
	}
	b.progress.Start(d.Name, size)
	defer b.progress.Done()
	if err := b.run(ctx, defaultWorkers(opts.Workers)); err != nil {
		return repo.Disk{}, repo.Stats{}, fmt.Errorf("back up %s: %w", opts.Name, err)
	}
	d.Map = b.chunks
	d.Allocated = b.allocated
	return d, repo.Stats{
		BytesRead:     b.bytesRead.Load(),
		BytesAdded:    b.bytesAdded.Load(),
		BlobsNew:      int(b.blobsNew.Load()),
		BlobsReused:   int(b.blobsReused.Load()),
		BlocksPatched: int(b.blocksPatched.Load()),
	}, nil
}

// carry sends the parent's ids of blocks [from, to), which are not read, down the pipeline in
// order; holes in the parent need no job. Without a parent it does nothing.
func (b *diskBackup) carry(ctx context.Context, jobs chan<- blockJob, seq *uint64, from, to int64) error {
	if b.parent == nil {
		return nil
	}
	for i := from; i < to; i++ {
		id, err := b.parent.id(ctx, i)
		if err != nil {
			return err
		}
		if id.IsZero() {
			continue
		}
		if err := pipeline.Send(ctx, jobs, blockJob{seq: *seq, index: i, carried: id}); err != nil {
			return err
		}
		*seq++
	}
	return nil
}

// parentMap looks up a parent disk's block ids in increasing order, one map chunk in memory.
type parentMap struct {
	bs    repo.BlobStore
	d     repo.Disk
	chunk int64
	ids   repo.BlockMapChunk
	buf   []byte
}

func (p *parentMap) id(ctx context.Context, i int64) (repo.ID, error) {
	c := i / repo.MapChunkBlocks
	if c != p.chunk {
		if c >= int64(len(p.d.Map)) {
			return repo.ID{}, fmt.Errorf("parent disk %q has no block %d", p.d.Name, i)
		}
		data, err := p.bs.LoadBlob(ctx, repo.TreeBlob, p.d.Map[c], p.buf)
		if err != nil {
			return repo.ID{}, fmt.Errorf("load block map chunk %d of the parent disk %q: %w", c, p.d.Name, err)
		}
		p.buf = data
		if err := p.ids.UnmarshalBinary(data); err != nil {
			return repo.ID{}, fmt.Errorf("block map chunk %d of the parent disk %q: %w", c, p.d.Name, err)
		}
		if p.ids.First != uint64(c*repo.MapChunkBlocks) {
			return repo.ID{}, fmt.Errorf("block map chunk %d of the parent disk %q starts at block %d: snapshot is corrupt", c, p.d.Name, p.ids.First)
		}
		p.chunk = c
	}
	k := i % repo.MapChunkBlocks
	if k >= int64(len(p.ids.IDs)) {
		return repo.ID{}, fmt.Errorf("parent disk %q has no block %d", p.d.Name, i)
	}
	return p.ids.IDs[k], nil
}
