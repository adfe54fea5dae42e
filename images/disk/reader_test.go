package disk

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/snapferry/snapferry/images/disk/memblobs"
	"github.com/snapferry/snapferry/images/repo"
)

// TestReaderRandomAccess backs up a sparse image spanning two block-map chunks and reads it back
// at random offsets through a Reader: the bytes match the file, holes load nothing, and a read
// inside one block loads only that block.
func TestReaderRandomAccess(t *testing.T) {
	const bs = 64 << 10
	size := int64(repo.MapChunkBlocks+300)*bs + 777 // two map chunks, a short last block
	p := tempPath(t, "disk.img")
	makeSparse(t, p, size,
		region{0, memblobs.RandBytes(1, 3*bs+5)},
		region{int64(repo.MapChunkBlocks-1) * bs, memblobs.RandBytes(2, 2*bs)}, // across the chunk boundary
		region{size - 1000, memblobs.RandBytes(3, 1000)})
	st := memblobs.New(bs)
	d, _, err := Backup(context.Background(), st, p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(context.Background(), st, d, ReaderOptions{CacheBlocks: 3})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		off := rng.Int64N(size)
		n := rng.IntN(3 * bs)
		got := make([]byte, n)
		m, err := r.ReadAt(got, off)
		end := min(off+int64(n), size)
		if m != int(end-off) || !bytes.Equal(got[:m], want[off:end]) {
			t.Fatalf("ReadAt(%d, %d) = %d, %v; contents differ", off, n, m, err)
		}
		if end < off+int64(n) && err != io.EOF {
			t.Fatalf("short read at the end: err %v, want EOF", err)
		}
	}
	// One small read in the middle of a hole loads nothing; one in a data block loads one block.
	r2, _ := NewReader(context.Background(), st, d, ReaderOptions{})
	if _, err := r2.ReadAt(make([]byte, 100), 100*bs); err != nil {
		t.Fatal(err)
	}
	if s := r2.Stats(); s.Blocks != 0 || s.MapChunks != 1 {
		t.Errorf("hole read loaded %+v", s)
	}
	if _, err := r2.ReadAt(make([]byte, 100), bs+10); err != nil {
		t.Fatal(err)
	}
	if s := r2.Stats(); s.Blocks != 1 || s.BlockBytes != bs {
		t.Errorf("one small read loaded %+v, want one block", s)
	}
}

// TestReaderCorruptMap: a snapshot whose map does not match its size is refused up front.
func TestReaderCorruptMap(t *testing.T) {
	st := memblobs.New(4096)
	if _, err := NewReader(context.Background(), st, repo.Disk{Name: "x", Size: 1 << 30, BlockSize: 4096}, ReaderOptions{}); err == nil {
		t.Fatal("NewReader accepted a disk with no block map")
	}
}
