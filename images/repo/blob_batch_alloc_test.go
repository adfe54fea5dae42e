package repo

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/snapferry/snapferry/images/store/local"
)

// allocBlockSize is larger than smallBlob, as every real disk block is: runs of such blocks take
// the block-sized scratch, not the small one.
const allocBlockSize = 256 << 10

// TestLoadBlobsReusesBlockScratch: a restore loads a disk's blocks in batches, one LoadBlobs per
// batch; the scratch a run of whole blocks is read and decoded in, and the block a patch is
// rebuilt in, come from the repository's pools. Before, every run made two fresh buffers of its
// largest blob and every patch a fresh block: over ssh:// that garbage (a GiB in a restore of
// the benchmark image) set the collector running and the kernel faulting pages in again.
func TestLoadBlobsReusesBlockScratch(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	if _, err := Init(context.Background(), local.New(dir), InitOptions{BlockSize: allocBlockSize, PackSize: 8 * allocBlockSize}); err != nil {
		t.Fatal(err)
	}
	r := testOpen(t, dir, nil)
	var whole, patches []ID
	for i := range 6 {
		b := randBlock(uint64(500+i), allocBlockSize)
		if i%2 == 0 { // compressible too: both the stored-raw and the zstd path
			for k := range b[:allocBlockSize/2] {
				b[k] = byte(k / 512)
			}
		}
		whole = append(whole, mustSaveWhole(t, r, b))
		changed, sub := []int{1, 7}, allocBlockSize/16
		block := changeSubs(b, sub, changed, uint64(i))
		id := r.BlobID(block)
		added, err := r.SavePatch(context.Background(), id, r.BlobID(b), block, sub, changed)
		if err != nil || !added || !isPatchBlob(r, id) {
			t.Fatal("the changed block was not stored as a patch")
		}
		patches = append(patches, id)
	}
	mustFlush(t, r)

	for _, c := range []struct {
		name string
		ids  []ID
	}{{"whole blocks", whole[:4]}, {"patches", patches[:3]}} {
		t.Run(c.name, func(t *testing.T) {
			load := func() uint64 {
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				err := r.LoadBlobs(context.Background(), DataBlob, c.ids, func(i int, data []byte, err error) error {
					if err != nil || len(data) != allocBlockSize {
						t.Fatalf("blob %d: %d bytes, err %v", i, len(data), err)
					}
					return nil
				})
				runtime.ReadMemStats(&after)
				if err != nil {
					t.Fatal(err)
				}
				return after.TotalAlloc - before.TotalAlloc
			}
			load() // fills the pools
			// The least of a few loads: a collection in between may empty the pools once.
			least := load()
			for range 4 {
				least = min(least, load())
			}
			per := least / uint64(len(c.ids))
			t.Logf("%d bytes allocated per loaded block of %d", per, allocBlockSize)
			if per > allocBlockSize/8 {
				t.Fatalf("a LoadBlobs of %d blocks allocated %d bytes per block (blocks of %d): scratch is not reused", len(c.ids), per, allocBlockSize)
			}
		})
	}
}
