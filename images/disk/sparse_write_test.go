package disk

import (
	"bytes"
	"os"
	"testing"

	"github.com/snapferry/snapferry/images/disk/disktest"

	"github.com/snapferry/snapferry/images/memblobs"
)

func TestWriteSparseSkipsZeroPagesAlignedToTheFile(t *testing.T) {
	// data starts 1000 bytes into a page: page boundaries are file offsets, not data offsets.
	const off = 3*pageSize + 1000
	data := make([]byte, 10*pageSize)
	copy(data[:100], memblobs.RandBytes(1, 100))       // first, partial page
	copy(data[5*pageSize:], memblobs.RandBytes(2, 10)) // a page in the middle
	copy(data[len(data)-5:], memblobs.RandBytes(3, 5)) // the last, partial page
	path := tempPath(t, "sparse")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size := int64(off + len(data))
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := WriteSparse(f, data, off); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data))
	if _, err := f.ReadAt(got, off); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("contents differ")
	}
	// The non-zero bytes lie in 3 file pages: 3, 8 and 13.
	if a := disktest.Allocated(t, path); a != 3*pageSize {
		t.Fatalf("%d bytes allocated, want 3 pages", a)
	}
}
