package disk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/snapferry/snapferry/images/repo"
)

// ReaderOptions tune a Reader. The zero value caches 8 blocks and 2 block-map chunks.
type ReaderOptions struct {
	CacheBlocks int // disk blocks kept decoded (BlockSize each, 1 MiB by default)
}

// Reader gives random access to a backed-up disk: ReadAt loads only the blocks it touches (and
// the block-map chunk that names them), keeps the last few in a small LRU, and reads holes as
// zeros without loading anything. Memory is CacheBlocks blocks plus two map chunks (128 KiB
// each), whatever the disk's size. It is safe for concurrent use; reads are served one at a
// time, which is what the file-system readers above it do anyway.
type Reader struct {
	ctx context.Context
	bs  repo.BlobStore
	d   repo.Disk

	mu     sync.Mutex
	blocks []cachedBlock // most recently used last
	max    int
	chunks []cachedChunk
	stats  ReaderStats
}

// ReaderStats count what a Reader loaded from the repository.
type ReaderStats struct {
	Blocks      int64 // data blocks loaded
	BlockBytes  int64 // their plaintext bytes
	MapChunks   int64 // block-map chunks loaded
	CacheHits   int64
	ZeroHoles   int64 // reads of hole blocks (nothing loaded)
	ReadCalls   int64
	BytesServed int64
}

type cachedBlock struct {
	index int64
	data  []byte
}

type cachedChunk struct {
	index int
	ids   []repo.ID
}

// NewReader checks d's geometry and returns a Reader over it. ctx bounds every load.
func NewReader(ctx context.Context, bs repo.BlobStore, d repo.Disk, opts ReaderOptions) (*Reader, error) {
	if err := checkDisk(d); err != nil {
		return nil, err
	}
	n := opts.CacheBlocks
	if n <= 0 {
		n = 8
	}
	return &Reader{ctx: ctx, bs: bs, d: d, max: n}, nil
}

// Size is the disk's apparent size.
func (r *Reader) Size() int64 { return r.d.Size }

// Stats returns what the reader has loaded so far.
func (r *Reader) Stats() ReaderStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// ReadAt implements io.ReaderAt under the context NewReader was given.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) { return r.ReadAtContext(r.ctx, p, off) }

// ReadAtContext is ReadAt with its own context, for callers that bound each read (a mount
// gives each kernel request a deadline).
func (r *Reader) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("disk reader: negative offset")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.ReadCalls++
	bs := int64(r.d.BlockSize)
	n := 0
	for len(p) > 0 {
		if off >= r.d.Size {
			return n, io.EOF
		}
		idx := off / bs
		in := off % bs
		k := min(int64(len(p)), bs-in, r.d.Size-off)
		data, err := r.block(ctx, idx)
		if err != nil {
			return n, err
		}
		if data == nil {
			clear(p[:k])
		} else {
			copy(p[:k], data[in:in+k])
		}
		n += int(k)
		r.stats.BytesServed += k
		p, off = p[k:], off+k
	}
	return n, nil
}

// block returns block idx's bytes, or nil for a hole.
func (r *Reader) block(ctx context.Context, idx int64) ([]byte, error) {
	for i := len(r.blocks) - 1; i >= 0; i-- {
		if r.blocks[i].index == idx {
			b := r.blocks[i]
			r.blocks = append(append(r.blocks[:i], r.blocks[i+1:]...), b)
			r.stats.CacheHits++
			return b.data, nil
		}
	}
	id, err := r.blockID(ctx, idx)
	if err != nil {
		return nil, err
	}
	if id.IsZero() {
		r.stats.ZeroHoles++
		return nil, nil
	}
	var buf []byte
	if len(r.blocks) >= r.max {
		buf = r.blocks[0].data // reuse the least recently used block's buffer
		r.blocks = r.blocks[1:]
	}
	data, err := loadBlock(ctx, r.bs, r.d, idx, id, buf)
	if err != nil {
		return nil, err
	}
	r.stats.Blocks++
	r.stats.BlockBytes += int64(len(data))
	r.blocks = append(r.blocks, cachedBlock{index: idx, data: data})
	return data, nil
}

// blockID looks block idx up in its block-map chunk; the last two chunks stay loaded.
func (r *Reader) blockID(ctx context.Context, idx int64) (repo.ID, error) {
	ci := int(idx / repo.MapChunkBlocks)
	k := int(idx % repo.MapChunkBlocks)
	for _, c := range r.chunks {
		if c.index == ci {
			return c.ids[k], nil
		}
	}
	data, err := r.bs.LoadBlob(ctx, repo.TreeBlob, r.d.Map[ci], nil)
	if err != nil {
		return repo.ID{}, fmt.Errorf("load block map chunk %d of disk %q: %w", ci, r.d.Name, err)
	}
	var chunk repo.BlockMapChunk
	if err := chunk.UnmarshalBinary(data); err != nil {
		return repo.ID{}, fmt.Errorf("block map chunk %d of disk %q: %w", ci, r.d.Name, err)
	}
	nblocks := (r.d.Size + int64(r.d.BlockSize) - 1) / int64(r.d.BlockSize)
	first := int64(ci) * repo.MapChunkBlocks
	if want := min(repo.MapChunkBlocks, nblocks-first); chunk.First != uint64(first) || int64(len(chunk.IDs)) != want {
		return repo.ID{}, fmt.Errorf("block map chunk %d of disk %q covers blocks %d+%d, want %d+%d: snapshot is corrupt",
			ci, r.d.Name, chunk.First, len(chunk.IDs), first, want)
	}
	r.stats.MapChunks++
	if len(r.chunks) >= 2 {
		r.chunks = r.chunks[1:]
	}
	r.chunks = append(r.chunks, cachedChunk{index: ci, ids: chunk.IDs})
	return chunk.IDs[k], nil
}
