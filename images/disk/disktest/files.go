// Package disktest holds what the disk-image, replica, repository, VM-job and end-to-end tests
// share: the ESXi shell profile (esxi_profile.go), file checks: what a file or a folder holds
// (hash, TreeState) and what a file occupies (sparse or not), and sparse test images
// (sparse.go: SparseFile, FirstDifference).
package disktest

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// FileSum is the SHA-256 of a file's contents, in hex: equal sums, equal images.
func FileSum(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Allocated is st_blocks*512: the bytes a file really occupies, so holes are seen to stay holes.
func Allocated(t testing.TB, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// TreeState maps every file below dir to its content: two equal states prove that nothing in
// the folder changed (a refused command, a wrong password).
func TreeState(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
