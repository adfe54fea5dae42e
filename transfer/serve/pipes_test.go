package serve

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func pipeSizeOf(t *testing.T, f *os.File) int {
	t.Helper()
	n, err := unix.FcntlInt(f.Fd(), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestGrowPipes: both ends of a pipe see the new size; a regular file is left alone.
func TestGrowPipes(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	before := pipeSizeOf(t, w)
	plain, err := os.Create(filepath.Join(t.TempDir(), "file"))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	GrowPipes(r, plain)
	if got := pipeSizeOf(t, w); got != pipeSize {
		t.Fatalf("pipe size %d after GrowPipes (was %d), want %d", got, before, pipeSize)
	}
}
