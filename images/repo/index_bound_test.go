package repo

import (
	"context"
	"fmt"
	"testing"
)

// Many tiny blobs (a tree of small files) fit one pack by bytes. The map index, the open packs'
// entry lists and the uploaded-but-unindexed packs must still stay bounded by the blob counts
// of Options, not grow with the run; and every blob must be found after a reopen.
func TestSmallBlobsKeepMapIndexBounded(t *testing.T) {
	ctx := context.Background()
	dir, _ := newRepo(t)
	const packBlobs, indexBlobs, n = 16, 64, 2000
	r := testOpen(t, dir, func(o *Options) { o.PackBlobs, o.IndexEveryBlobs = packBlobs, indexBlobs })
	bound := r.opts.Packers*packBlobs + indexBlobs + packBlobs
	ids := make([]ID, n)
	maxMap := 0
	for i := range n {
		data := fmt.Appendf(nil, "small file %d", i)
		ids[i] = r.BlobID(data)
		if _, err := r.SaveBlob(ctx, DataBlob, ids[i], data); err != nil {
			t.Fatal(err)
		}
		r.mu.Lock()
		maxMap = max(maxMap, len(r.idx.overlay))
		unindexed := r.unindexedBlobs
		r.mu.Unlock()
		if unindexed >= indexBlobs+packBlobs {
			t.Fatalf("after %d blobs: %d blobs in unindexed packs, want < %d", i+1, unindexed, indexBlobs+packBlobs)
		}
	}
	if maxMap > bound {
		t.Fatalf("map index held up to %d of %d blobs, want at most %d", maxMap, n, bound)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r2 := testOpen(t, dir, nil)
	for i, id := range ids {
		data, err := r2.LoadBlob(ctx, DataBlob, id, nil)
		if err != nil {
			t.Fatalf("blob %d after reopen: %v", i, err)
		}
		if want := fmt.Sprintf("small file %d", i); string(data) != want {
			t.Fatalf("blob %d = %q, want %q", i, data, want)
		}
	}
}
