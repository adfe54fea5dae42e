package s3store_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/storetest"
	"github.com/snapferry/snapferry/transfer/ratelimit"
	"github.com/snapferry/snapferry/transfer/s3store"
	"github.com/snapferry/snapferry/transfer/s3store/rgwtest"
)

// sourceFile writes data to a file and returns it open at offset 0, as a pack's temp file is.
func sourceFile(t *testing.T, data []byte) *os.File {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pack")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestSourceSavedInPlace: a multipart file saved from a file is sent from the file, not
// copied into memory: the whole save allocates a small fraction of its size. Before, every
// part was read into a buffer (a part's size each, doubled by bytes.Buffer's growth): the
// memory that made s3:// backups peak at 215-284 MiB. The file arrives whole and equal.
func TestSourceSavedInPlace(t *testing.T) {
	srv := rgwtest.Get(t)
	s, _ := faultyStore(t, srv, s3store.Options{PartSize: 5 << 20})
	const size = 32 << 20
	data := storetest.Data(20, size)
	f := sourceFile(t, data)
	h := store.Handle{Kind: store.KindData, Name: storetest.Name(20)}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	if err := s.Save(context.Background(), h, f); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&m1)
	alloc := m1.TotalAlloc - m0.TotalAlloc
	t.Logf("saving %d MiB from a file allocated %d KiB", size>>20, alloc>>10)
	if alloc > size/8 {
		t.Errorf("saving a %d MiB file (7 parts) allocated %d KiB, want at most %d KiB (parts sent from the file)",
			size>>20, alloc>>10, size/8>>10)
	}
	if got := loadAll(t, s, h); !bytes.Equal(got, data) {
		t.Errorf("stored file differs from the source")
	}
}

// TestSourcePartRetried: a part refused once with 503 is sent again from the file (rewound),
// and the file arrives whole; a part refused for good aborts the upload.
func TestSourcePartRetried(t *testing.T) {
	srv := rgwtest.Get(t)
	s, ft := faultyStore(t, srv, s3store.Options{PartSize: 5 << 20})
	data := storetest.Data(21, 12<<20)
	var refused atomic.Bool
	ft.setRule(func(req *http.Request) *fault {
		if req.Method == http.MethodPut && req.URL.Query().Get("partNumber") == "2" && refused.CompareAndSwap(false, true) {
			return &fault{status: 503, code: "SlowDown"}
		}
		return nil
	})
	h := store.Handle{Kind: store.KindData, Name: storetest.Name(21)}
	if err := s.Save(context.Background(), h, sourceFile(t, data)); err != nil {
		t.Fatalf("save through a refused part: %v", err)
	}
	if got := loadAll(t, s, h); !bytes.Equal(got, data) {
		t.Errorf("stored file differs after a resent part")
	}

	ft.setRule(func(req *http.Request) *fault {
		if req.Method == http.MethodPut && req.URL.Query().Get("partNumber") == "3" {
			return &fault{status: 403, code: "AccessDenied"}
		}
		return nil
	})
	h2 := store.Handle{Kind: store.KindData, Name: storetest.Name(22)}
	if err := s.Save(context.Background(), h2, sourceFile(t, data)); err == nil {
		t.Fatal("save with a refused part succeeded")
	}
	ft.setRule(nil)
	assertNoUploads(t, s)
	if _, err := s.Stat(context.Background(), h2); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("failed save left %s: %v", h2, err)
	}
}

// TestLimitedSourceSave: under --bwlimit the store paces its request bodies (still sent from
// the file, still rewound for a resend) and the file arrives whole.
func TestLimitedSourceSave(t *testing.T) {
	srv := rgwtest.Get(t)
	s, ft := faultyStore(t, srv, s3store.Options{PartSize: 5 << 20, Limiter: ratelimit.NewLimiter(512<<20, nil)})
	var refused atomic.Bool
	ft.setRule(func(req *http.Request) *fault {
		if req.Method == http.MethodPut && req.URL.Query().Get("partNumber") == "1" && refused.CompareAndSwap(false, true) {
			return &fault{status: 500, code: "InternalError"}
		}
		return nil
	})
	data := storetest.Data(23, 11<<20)
	h := store.Handle{Kind: store.KindData, Name: storetest.Name(23)}
	if err := s.Save(context.Background(), h, sourceFile(t, data)); err != nil {
		t.Fatalf("paced save through a refused part: %v", err)
	}
	if got := loadAll(t, s, h); !bytes.Equal(got, data) {
		t.Errorf("stored file differs")
	}
}
