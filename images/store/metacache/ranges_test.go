package metacache_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/local"
	"github.com/snapferry/snapferry/images/store/metacache"
	"github.com/snapferry/snapferry/images/store/storetest"
)

func loadRange(t *testing.T, be store.Backend, h store.Handle, off, n int64) []byte {
	t.Helper()
	rd, err := be.Load(context.Background(), h, off, n)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	b, err := io.ReadAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSmallRangesCached: a small range of a pack (a directory tree) is fetched once and then read
// from the cache, also after a damaged copy was fetched again; large ranges always go to the
// store; pruning the pack drops its cached ranges at the next listing of packs.
func TestSmallRangesCached(t *testing.T) {
	ctx := context.Background()
	inner := &counting{Backend: local.New(t.TempDir())}
	if err := inner.Create(ctx); err != nil {
		t.Fatal(err)
	}
	h := store.Handle{Kind: store.KindData, Name: storetest.Name(1)}
	pack := storetest.Data(1, 1<<20)
	if err := inner.Save(ctx, h, bytes.NewReader(pack)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for run := 0; run < 3; run++ {
		be := metacache.New(inner, dir)
		if got := loadRange(t, be, h, 1000, 5000); !bytes.Equal(got, pack[1000:6000]) {
			t.Fatalf("run %d: range differs", run)
		}
	}
	if n := inner.loads.Load(); n != 1 {
		t.Errorf("a small range was fetched %d times in 3 runs, want 1", n)
	}
	copies, _ := filepath.Glob(filepath.Join(dir, "data", h.Name[:2], h.Name+".*"))
	if len(copies) != 1 {
		t.Fatalf("cached copies: %v", copies)
	}
	raw, _ := os.ReadFile(copies[0])
	raw[40] ^= 1
	if err := os.WriteFile(copies[0], raw, 0o600); err != nil {
		t.Fatal(err)
	}
	be := metacache.New(inner, dir)
	if got := loadRange(t, be, h, 1000, 5000); !bytes.Equal(got, pack[1000:6000]) || inner.loads.Load() != 2 {
		t.Fatalf("damaged copy: range equal %v after %d loads, want it fetched again", bytes.Equal(got, pack[1000:6000]), inner.loads.Load())
	}
	for i := 0; i < 2; i++ {
		loadRange(t, be, h, 0, metacache.MaxRange+1)
	}
	if n := inner.loads.Load(); n != 4 {
		t.Errorf("large ranges: %d loads in all, want 4 (each large one from the store)", n)
	}
	if err := inner.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := be.List(ctx, store.KindData, func(store.FileInfo) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "data", h.Name[:2], "*")); len(left) != 0 {
		t.Errorf("ranges of a pruned pack kept: %v", left)
	}
}
