package metacache_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"lukechampine.com/blake3"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/local"
	"github.com/snapferry/snapferry/images/store/metacache"
	"github.com/snapferry/snapferry/images/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Backend {
		return metacache.New(local.New(t.TempDir()), t.TempDir())
	})
}

// counting counts the Loads that reach the store.
type counting struct {
	store.Backend
	loads atomic.Int64
}

func (c *counting) Load(ctx context.Context, h store.Handle, off, n int64) (io.ReadCloser, error) {
	c.loads.Add(1)
	return c.Backend.Load(ctx, h, off, n)
}

func named(data string) (store.Handle, []byte) {
	sum := blake3.Sum256([]byte(data))
	return store.Handle{Kind: store.KindIndex, Name: fmt.Sprintf("%x", sum)}, []byte(data)
}

func loadAll(t *testing.T, be store.Backend, h store.Handle) []byte {
	t.Helper()
	return loadRange(t, be, h, 0, 0)
}

// TestSecondOpenReadsNothing: a file written by another host is fetched once; later reads (a
// later command with the same cache folder) come from disk, a damaged copy is fetched again, and
// a file pruned from the store leaves the cache at the next listing.
func TestSecondOpenReadsNothing(t *testing.T) {
	ctx := context.Background()
	inner := &counting{Backend: local.New(t.TempDir())}
	if err := inner.Create(ctx); err != nil {
		t.Fatal(err)
	}
	h, data := named("index file written by another host")
	if err := inner.Save(ctx, h, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	cacheDir := t.TempDir()
	for run := 0; run < 3; run++ {
		be := metacache.New(inner, cacheDir)
		if got := loadAll(t, be, h); !bytes.Equal(got, data) {
			t.Fatalf("run %d: loaded %q", run, got)
		}
	}
	if n := inner.loads.Load(); n != 1 {
		t.Errorf("3 runs loaded the index file %d times from the store, want 1", n)
	}
	copyPath := filepath.Join(cacheDir, "index", h.Name)
	if err := os.WriteFile(copyPath, []byte("damaged"), 0o600); err != nil {
		t.Fatal(err)
	}
	be := metacache.New(inner, cacheDir)
	if got := loadAll(t, be, h); !bytes.Equal(got, data) {
		t.Fatalf("after damage: loaded %q", got)
	}
	if n := inner.loads.Load(); n != 2 {
		t.Errorf("a damaged copy was not fetched again (%d loads)", n)
	}
	if err := inner.Remove(ctx, h); err != nil { // pruned by another host
		t.Fatal(err)
	}
	if err := be.List(ctx, store.KindIndex, func(store.FileInfo) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(copyPath); !os.IsNotExist(err) {
		t.Errorf("copy of a pruned file kept after listing: %v", err)
	}
}

// TestOwnWritesAreCached: an index file this host saves is read back without a fetch.
func TestOwnWritesAreCached(t *testing.T) {
	ctx := context.Background()
	inner := &counting{Backend: local.New(t.TempDir())}
	be := metacache.New(inner, t.TempDir())
	if err := be.Create(ctx); err != nil {
		t.Fatal(err)
	}
	h, data := named("my own index")
	if err := be.Save(ctx, h, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if got := loadAll(t, be, h); !bytes.Equal(got, data) || inner.loads.Load() != 0 {
		t.Errorf("own index: %q after %d store loads, want no load", got, inner.loads.Load())
	}
}
