package disk

import (
	"context"
	"fmt"

	"github.com/snapferry/snapferry/images/repo"
)

// checkDisk rejects a Disk whose geometry cannot be right before anything is written.
func checkDisk(d repo.Disk) error {
	if d.BlockSize <= 0 || d.Size < 0 {
		return fmt.Errorf("disk %q: block size %d, size %d: snapshot is corrupt", d.Name, d.BlockSize, d.Size)
	}
	nblocks := (d.Size + int64(d.BlockSize) - 1) / int64(d.BlockSize)
	if want := (nblocks + repo.MapChunkBlocks - 1) / repo.MapChunkBlocks; int64(len(d.Map)) != want {
		return fmt.Errorf("disk %q: %d block-map chunks for %d bytes, want %d: snapshot is corrupt", d.Name, len(d.Map), d.Size, want)
	}
	return nil
}

// blockLen is the length of block i of d: BlockSize except for a short last block.
func blockLen(d repo.Disk, i int64) int {
	return int(min(int64(d.BlockSize), d.Size-i*int64(d.BlockSize)))
}

// walkMap loads d's block-map chunks one at a time, in order, and calls fn for every block with
// its blob id (zero for a hole). Only one chunk is in memory at a time.
func walkMap(ctx context.Context, bs repo.BlobStore, d repo.Disk, fn func(index int64, id repo.ID) error) error {
	if err := checkDisk(d); err != nil {
		return err
	}
	nblocks := (d.Size + int64(d.BlockSize) - 1) / int64(d.BlockSize)
	var buf []byte
	var chunk repo.BlockMapChunk
	for ci, cid := range d.Map {
		data, err := bs.LoadBlob(ctx, repo.TreeBlob, cid, buf)
		if err != nil {
			return fmt.Errorf("load block map chunk %d of disk %q: %w", ci, d.Name, err)
		}
		buf = data
		if err := chunk.UnmarshalBinary(data); err != nil {
			return fmt.Errorf("block map chunk %d of disk %q: %w", ci, d.Name, err)
		}
		first := int64(ci) * repo.MapChunkBlocks
		if want := min(repo.MapChunkBlocks, nblocks-first); chunk.First != uint64(first) || int64(len(chunk.IDs)) != want {
			return fmt.Errorf("block map chunk %d of disk %q covers blocks %d+%d, want %d+%d: snapshot is corrupt",
				ci, d.Name, chunk.First, len(chunk.IDs), first, want)
		}
		for k, id := range chunk.IDs {
			if err := fn(first+int64(k), id); err != nil {
				return err
			}
		}
	}
	return nil
}
