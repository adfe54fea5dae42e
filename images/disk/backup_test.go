package disk

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/images/disk/disktest"

	"github.com/snapferry/snapferry/images/disk/memblobs"
	"github.com/snapferry/snapferry/images/progress"
	"github.com/snapferry/snapferry/images/repo"
)

const (
	kib       = 1 << 10
	testBlock = 16 * kib // small blocks keep images that span several map chunks small
)

// roundTripImage builds a sparse image that exercises partial blocks, a written run of zeros,
// data across a block-map chunk boundary, a repeated block and a short last block. With
// testBlock-sized blocks it spans three map chunks.
func roundTripImage(t *testing.T) (path string, size int64, dataBlocks map[int64]bool, zeroBlocks []int64) {
	path = tempPath(t, "disk.img")
	const bs = testBlock
	size = 2*repo.MapChunkBlocks*bs + 100*bs + 1000
	same := memblobs.RandBytes(7, bs)
	regions := []region{
		{0, memblobs.RandBytes(1, 4096)},
		{100 * kib, memblobs.RandBytes(2, 300*kib)},
		{16 * bs, make([]byte, 4*bs)}, // allocated, but all zeros: blocks 16..19
		{4096*bs - 10*kib, memblobs.RandBytes(3, 20*kib)},
		{300 * bs, same},
		{301 * bs, same},
		{size - 3000, memblobs.RandBytes(4, 3000)},
	}
	makeSparse(t, path, size, regions...)
	dataBlocks = map[int64]bool{}
	for _, r := range regions {
		for b := r.off / bs; b <= (r.off+int64(len(r.data))-1)/bs; b++ {
			dataBlocks[b] = true
		}
	}
	return path, size, dataBlocks, []int64{16, 17, 18, 19}
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	src, size, dataBlocks, zeroBlocks := roundTripImage(t)
	bs := memblobs.New(testBlock)
	var prog progress.Counter
	d, st, err := Backup(ctx, bs, src, Options{Workers: 3, Progress: &prog})
	if err != nil {
		t.Fatal(err)
	}
	if d.Size != size || d.BlockSize != testBlock || d.Format != "raw" || d.Name != "disk.img" {
		t.Fatalf("disk header %+v", d)
	}
	if len(d.Map) != 3 {
		t.Fatalf("%d map chunks, want 3", len(d.Map))
	}
	// Only blocks that hold data were read: holes never are.
	var wantRead int64
	for b := range dataBlocks {
		wantRead += int64(blockLen(d, b))
	}
	if st.BytesRead != wantRead {
		t.Fatalf("read %d bytes, want %d (the data blocks only)", st.BytesRead, wantRead)
	}
	if p := prog.Snapshot(); p.Bytes != size || p.Done != 1 || p.Total != size {
		t.Fatalf("progress %+v, want all %d bytes reported", p, size)
	}
	// Block 301 repeats block 300: one blob, reused once.
	if st.BlobsReused < 1 {
		t.Fatalf("stats %+v: the repeated block was not deduplicated", st)
	}
	ids := map[int64]repo.ID{}
	if err := walkMap(ctx, bs, d, func(i int64, id repo.ID) error {
		if !id.IsZero() {
			ids[i] = id
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, z := range zeroBlocks {
		if _, ok := ids[z]; ok {
			t.Errorf("all-zero block %d was stored, want a hole", z)
		}
	}
	if len(ids) != len(dataBlocks)-len(zeroBlocks) {
		t.Errorf("%d stored blocks, want %d", len(ids), len(dataBlocks)-len(zeroBlocks))
	}
	if ids[300] != ids[301] {
		t.Error("equal blocks got different ids")
	}
	var wantAlloc int64
	for b := range ids {
		wantAlloc += int64(blockLen(d, b))
	}
	if d.Allocated != wantAlloc {
		t.Errorf("Allocated %d, want %d", d.Allocated, wantAlloc)
	}

	dst := tempPath(t, "restored.img")
	if err := Restore(ctx, bs, d, dst, RestoreOptions{Workers: 3}); err != nil {
		t.Fatal(err)
	}
	if disktest.FileSum(t, dst) != disktest.FileSum(t, src) {
		t.Fatal("restored image differs from the source")
	}
	if apparent(t, dst) != size {
		t.Fatalf("restored size %d, want %d", apparent(t, dst), size)
	}
	// The restore is sparse: it allocates no more than the source (whose zero run is
	// allocated), and at least the non-zero data.
	sa, da := disktest.Allocated(t, src), disktest.Allocated(t, dst)
	t.Logf("allocated: source %d, restored %d, apparent %d", sa, da, size)
	if da > sa+sa/20 || da < 4096+300*kib {
		t.Fatalf("restored allocation %d bytes, source %d: not sparse within 5%%", da, sa)
	}

	// A second backup of the same data adds nothing.
	_, st2, err := Backup(ctx, bs, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st2.BlobsNew != 0 || st2.BytesAdded != 0 {
		t.Fatalf("second backup stats %+v, want no new blobs", st2)
	}

	// Restoring over an existing, larger, fully written file leaves no old data behind.
	makeSparse(t, dst, 2*size, region{0, memblobs.RandBytes(9, 4<<20)})
	if err := Restore(ctx, bs, d, dst, RestoreOptions{Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	if disktest.FileSum(t, dst) != disktest.FileSum(t, src) {
		t.Fatal("restore over an existing file differs from the source")
	}
}

func TestStreamWritesWholeImage(t *testing.T) {
	ctx := context.Background()
	src, size, _, _ := roundTripImage(t)
	bs := memblobs.New(testBlock)
	d, _, err := Backup(ctx, bs, src, Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New() // what disktest.FileSum hashes with
	n, err := Stream(ctx, bs, d, h, RestoreOptions{Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if n != size {
		t.Fatalf("streamed %d bytes, want %d", n, size)
	}
	if hex.EncodeToString(h.Sum(nil)) != disktest.FileSum(t, src) {
		t.Fatal("streamed image differs from the source")
	}
}

func TestEmptyAndTinyImages(t *testing.T) {
	ctx := context.Background()
	bs := memblobs.New(testBlock)
	for _, size := range []int64{0, 1, testBlock, testBlock + 1} {
		src := tempPath(t, "tiny.img")
		var regions []region
		if size > 0 {
			regions = append(regions, region{0, memblobs.RandBytes(uint64(size), int(size))})
		}
		makeSparse(t, src, size, regions...)
		d, _, err := Backup(ctx, bs, src, Options{})
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		dst := tempPath(t, "tiny.out")
		if err := Restore(ctx, bs, d, dst, RestoreOptions{}); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if apparent(t, dst) != size || disktest.FileSum(t, dst) != disktest.FileSum(t, src) {
			t.Fatalf("size %d: restored image differs", size)
		}
	}
}

func TestRestoreRejectsCorruptMaps(t *testing.T) {
	ctx := context.Background()
	src, _, _, _ := roundTripImage(t)
	bs := memblobs.New(testBlock)
	d, _, err := Backup(ctx, bs, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dst := tempPath(t, "out.img")

	short := d
	short.Map = d.Map[:2]
	if err := Restore(ctx, bs, short, dst, RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("missing map chunk: err %v, want a corrupt-snapshot error", err)
	}

	// Chunks in the wrong order cover the wrong blocks.
	swapped := d
	swapped.Map = []repo.ID{d.Map[1], d.Map[0], d.Map[2]}
	if err := Restore(ctx, bs, swapped, dst, RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "covers blocks") {
		t.Fatalf("swapped map chunks: err %v", err)
	}

	// A block blob longer than a block must not be written past its place.
	long := memblobs.RandBytes(11, testBlock+1)
	lid := bs.BlobID(long)
	if _, err := bs.SaveBlob(ctx, repo.DataBlob, lid, long); err != nil {
		t.Fatal(err)
	}
	chunk := repo.BlockMapChunk{First: 0, IDs: make([]repo.ID, 3)}
	chunk.IDs[1] = lid
	raw, _ := chunk.MarshalBinary()
	cid := bs.BlobID(raw)
	if _, err := bs.SaveBlob(ctx, repo.TreeBlob, cid, raw); err != nil {
		t.Fatal(err)
	}
	crafted := repo.Disk{Name: "crafted", Size: 3 * testBlock, BlockSize: testBlock, Map: []repo.ID{cid}}
	if err := Restore(ctx, bs, crafted, dst, RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "has 16385 bytes") {
		t.Fatalf("oversized block: err %v", err)
	}
	if _, err := Stream(ctx, bs, crafted, discardWriter{}, RestoreOptions{}); err == nil {
		t.Fatal("stream of an oversized block succeeded")
	}

	bad := d
	bad.BlockSize = 0
	if err := Restore(ctx, bs, bad, dst, RestoreOptions{}); err == nil {
		t.Fatal("block size 0 accepted")
	}
}

func TestBackupCancelled(t *testing.T) {
	src, _, _, _ := roundTripImage(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := Backup(ctx, memblobs.New(testBlock), src, Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled backup: err %v", err)
	}
}

func TestBackupMissingFile(t *testing.T) {
	_, _, err := Backup(context.Background(), memblobs.New(testBlock), "/nonexistent/disk.img", Options{})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/disk.img") {
		t.Fatalf("err %v, want one naming the path", err)
	}
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
