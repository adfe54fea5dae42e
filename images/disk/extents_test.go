package disk

import (
	"os"
	"testing"

	"github.com/snapferry/snapferry/images/memblobs"
)

func TestExtentMapperFindsDataRanges(t *testing.T) {
	path := tempPath(t, "sparse.img")
	const mib = 1 << 20
	makeSparse(t, path, 64*mib,
		region{0, memblobs.RandBytes(1, 4096)},
		region{5 * mib, memblobs.RandBytes(2, 3*mib)},
		region{63 * mib, memblobs.RandBytes(3, 8192)},
	)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := extentMapper{f: f, size: 64 * mib}
	var got [][2]int64
	for off := int64(0); ; {
		start, end, ok, err := m.next(off)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		got = append(got, [2]int64{start, end})
		off = end
	}
	if m.dense {
		t.Skip("filesystem of the temp dir does not support SEEK_DATA")
	}
	want := [][2]int64{{0, 4096}, {5 * mib, 8 * mib}, {63 * mib, 63*mib + 8192}}
	if len(got) != len(want) {
		t.Fatalf("data ranges %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("data range %d is %v, want %v (all: %v)", i, got[i], want[i], got)
		}
	}
}

func TestExtentMapperEmptyFile(t *testing.T) {
	path := tempPath(t, "empty.img")
	makeSparse(t, path, 1<<30)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := extentMapper{f: f, size: 1 << 30}
	if _, _, ok, err := m.next(0); err != nil || (ok && !m.dense) {
		t.Fatalf("all-hole file: ok=%v err=%v", ok, err)
	}
}
