package metacache_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/local"
	"github.com/snapferry/snapferry/images/store/metacache"
	"github.com/snapferry/snapferry/images/store/storetest"
)

// TestKeptRangeServesLoad: a range offered with KeepRange is served without a load from the
// store, HasRange tells so, and ranges above MaxRange are declined.
func TestKeptRangeServesLoad(t *testing.T) {
	inner := &counting{Backend: local.New(t.TempDir())}
	be := metacache.New(inner, t.TempDir())
	h := store.Handle{Kind: store.KindData, Name: storetest.Name(1)}
	pack := storetest.Data(1, 1<<20)
	be.KeepRange(h, 4096, io.NewSectionReader(bytes.NewReader(pack), 4096, 3000))
	be.KeepRange(h, 0, io.NewSectionReader(bytes.NewReader(pack), 0, metacache.MaxRange+1))
	if !be.HasRange(h, 4096, 3000) || be.HasRange(h, 4096, 3001) || be.HasRange(h, 0, metacache.MaxRange+1) {
		t.Errorf("HasRange: kept %v, other length %v, too large %v; want true, false, false",
			be.HasRange(h, 4096, 3000), be.HasRange(h, 4096, 3001), be.HasRange(h, 0, metacache.MaxRange+1))
	}
	if got := loadRange(t, be, h, 4096, 3000); !bytes.Equal(got, pack[4096:7096]) || inner.loads.Load() != 0 {
		t.Errorf("kept range: equal %v after %d store loads, want equal after none", bytes.Equal(got, pack[4096:7096]), inner.loads.Load())
	}
}

// TestRangesBounded: the range copies stay within the bound, and the ones dropped are those
// used least recently (a range read again stays).
func TestRangesBounded(t *testing.T) {
	const limit = 64 << 10
	inner := &counting{Backend: local.New(t.TempDir())}
	dir := t.TempDir()
	be := metacache.NewBounded(inner, dir, limit)
	pack := storetest.Data(2, 1<<20)
	keep := func(i int) store.Handle {
		h := store.Handle{Kind: store.KindData, Name: storetest.Name(i)}
		be.KeepRange(h, int64(i), io.NewSectionReader(bytes.NewReader(pack), int64(i), 4000))
		return h
	}
	var first []store.Handle
	for i := 0; i < 10; i++ {
		first = append(first, keep(i))
	}
	// Age them, as if kept an hour ago, then use the first one again.
	old := time.Now().Add(-time.Hour)
	copies, _ := filepath.Glob(filepath.Join(dir, "data", "*", "*"))
	for _, c := range copies {
		if err := os.Chtimes(c, old, old); err != nil {
			t.Fatal(err)
		}
	}
	loadRange(t, be, first[0], 0, 4000)
	// Each copy takes 4032 bytes (hash and range): 16 fit the bound, the 17th passes it and
	// the walk trims to three quarters (12 copies), dropping 5 of the 9 old unused ones.
	var newer []store.Handle
	for i := 10; i < 17; i++ {
		newer = append(newer, keep(i))
	}
	if n := cacheBytes(t, filepath.Join(dir, "data")); n > limit {
		t.Errorf("range copies hold %d bytes, bound %d", n, limit)
	}
	if !be.HasRange(first[0], 0, 4000) {
		t.Errorf("an old range used again was dropped before unused ones")
	}
	for i, h := range newer {
		if !be.HasRange(h, int64(10+i), 4000) {
			t.Errorf("range %d, kept after the old ones, was dropped", 10+i)
		}
	}
	oldLeft := 0
	for i := 1; i < 10; i++ {
		if be.HasRange(first[i], int64(i), 4000) {
			oldLeft++
		}
	}
	if oldLeft != 4 {
		t.Errorf("%d of 9 old unused ranges left, want 4 (the bound drops the least recently used)", oldLeft)
	}
	if inner.loads.Load() != 0 {
		t.Errorf("%d store loads, want none", inner.loads.Load())
	}
}

func cacheBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestWrittenTreesAreCached: the tree blobs a repository stores in a pack (here through a store
// that takes whole files only, like s3://) are kept in the cache as the pack is stored, so a
// later run reads them without a request; data blobs are not kept. Plain and encrypted.
func TestWrittenTreesAreCached(t *testing.T) {
	for _, pw := range []string{"", "secret"} {
		t.Run(fmt.Sprintf("encrypted=%v", pw != ""), func(t *testing.T) {
			ctx := context.Background()
			inner := &counting{Backend: local.New(t.TempDir())}
			cacheDir := t.TempDir()
			be := metacache.New(inner, cacheDir)
			if err := be.Create(ctx); err != nil {
				t.Fatal(err)
			}
			var password []byte
			if pw != "" {
				password = []byte(pw)
			}
			if _, err := repo.Init(ctx, be, repo.InitOptions{Password: password, KDF: repo.KDFParams{N: 1 << 10, R: 8, P: 1}}); err != nil {
				t.Fatal(err)
			}
			r, err := repo.Open(ctx, be, repo.Options{TempDir: t.TempDir(), Hostname: "test", Password: password})
			if err != nil {
				t.Fatal(err)
			}
			var trees, blobs []repo.ID
			for i := 0; i < 50; i++ {
				tr := []byte(fmt.Sprintf(`{"nodes":[{"name":"f%d","type":"file"}]}`, i))
				data := storetest.Data(uint64(i), 5000)
				for _, b := range []struct {
					t    repo.BlobType
					data []byte
					to   *[]repo.ID
				}{{repo.TreeBlob, tr, &trees}, {repo.DataBlob, data, &blobs}} {
					id := r.BlobID(b.data)
					if _, err := r.SaveBlob(ctx, b.t, id, b.data); err != nil {
						t.Fatal(err)
					}
					*b.to = append(*b.to, id)
				}
			}
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			r.Close()

			r2, err := repo.Open(ctx, metacache.New(inner, cacheDir), repo.Options{TempDir: t.TempDir(), Hostname: "test", Password: password})
			if err != nil {
				t.Fatal(err)
			}
			defer r2.Close()
			before := inner.loads.Load()
			for _, id := range trees {
				if _, err := r2.LoadBlob(ctx, repo.TreeBlob, id, nil); err != nil {
					t.Fatal(err)
				}
			}
			if n := inner.loads.Load() - before; n != 0 {
				t.Errorf("reading 50 trees this host wrote took %d loads from the store, want 0", n)
			}
			for _, id := range blobs {
				if _, err := r2.LoadBlob(ctx, repo.DataBlob, id, nil); err != nil {
					t.Fatal(err)
				}
			}
			if n := inner.loads.Load() - before; n != int64(len(blobs)) {
				t.Errorf("data blobs: %d loads, want %d (data is not written through)", n, len(blobs))
			}
		})
	}
}
