package disktest

import (
	"os"
	"testing"
)

// Piece is data at an offset of a file.
type Piece struct {
	Off  int64
	Data []byte
}

// SparseFile creates path as a file of size bytes that holds only pieces, written and synced:
// the rest are holes, as in a thin disk image.
func SparseFile(t testing.TB, path string, size int64, pieces ...Piece) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for _, p := range pieces {
		if _, err := f.WriteAt(p.Data, p.Off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// FirstDifference is the offset of the first byte in which got and want differ, the length of
// the shorter when one is a prefix of the other, and -1 when they are equal: what a failing
// comparison of two disk images reports.
func FirstDifference(got, want []byte) int {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return i
		}
	}
	if len(got) != len(want) {
		return min(len(got), len(want))
	}
	return -1
}
