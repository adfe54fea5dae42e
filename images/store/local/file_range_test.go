package local

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/storetest"
)

// TestFileRangeNamesWhatLoadWouldRead: the file, offset and length FileRange reports are exactly
// the bytes reading the loader would give, for a ranged load, a load to the end, one past the end
// and a whole file; any other reader is no file range.
func TestFileRangeNamesWhatLoadWouldRead(t *testing.T) {
	ctx := context.Background()
	be := New(filepath.Join(t.TempDir(), "repo"))
	if err := be.Create(ctx); err != nil {
		t.Fatal(err)
	}
	h := store.Handle{Kind: store.KindData, Name: storetest.Name(2)}
	data := bytes.Repeat([]byte("0123456789"), 1000)
	if err := be.Save(ctx, h, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ off, length, wantOff, wantN int64 }{
		{100, 50, 100, 50}, {100, 0, 100, 9900}, {9990, 100, 9990, 10}, {0, 0, 0, 10000},
	} {
		rc, err := be.Load(ctx, h, c.off, c.length)
		if err != nil {
			t.Fatal(err)
		}
		f, off, n, ok := FileRange(rc)
		if !ok || off != c.wantOff || n != c.wantN {
			t.Fatalf("load %d+%d: range ok %v %d+%d, want %d+%d", c.off, c.length, ok, off, n, c.wantOff, c.wantN)
		}
		got := make([]byte, n)
		if _, err := f.ReadAt(got, off); err != nil || !bytes.Equal(got, data[off:off+n]) {
			t.Fatalf("load %d+%d: the range holds other bytes (%v)", c.off, c.length, err)
		}
		if read, _ := io.ReadAll(rc); !bytes.Equal(read, got) {
			t.Fatalf("load %d+%d: reading gives %d bytes, the range %d", c.off, c.length, len(read), n)
		}
		rc.Close()
	}
	if _, _, _, ok := FileRange(io.NopCloser(bytes.NewReader(data))); ok {
		t.Fatal("a reader that is no file has a file range")
	}
}
