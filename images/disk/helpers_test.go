package disk

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"lukechampine.com/blake3"

	"github.com/snapferry/snapferry/images/disk/disktest"
	"github.com/snapferry/snapferry/images/repo"
)

// region is data written at an offset of a sparse test file.
type region struct {
	off  int64
	data []byte
}

// makeSparse creates a sparse file of the given apparent size holding only the regions.
func makeSparse(t testing.TB, path string, size int64, regions ...region) {
	t.Helper()
	pieces := make([]disktest.Piece, len(regions))
	for i, r := range regions {
		pieces[i] = disktest.Piece{Off: r.off, Data: r.data}
	}
	disktest.SparseFile(t, path, size, pieces...)
}

func apparent(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// discardStore hashes and counts but keeps nothing, for runs whose memory is measured.
type discardStore struct{ blockSize int }

func (s discardStore) BlobID(b []byte) repo.ID { return repo.ID(blake3.Sum256(b)) }
func (s discardStore) SaveBlob(ctx context.Context, _ repo.BlobType, _ repo.ID, _ []byte) (bool, error) {
	return true, ctx.Err()
}
func (s discardStore) LoadBlob(context.Context, repo.BlobType, repo.ID, []byte) ([]byte, error) {
	return nil, os.ErrNotExist
}
func (s discardStore) HasBlob(repo.BlobType, repo.ID) bool { return false }
func (s discardStore) BlockSize() int                      { return s.blockSize }

func tempPath(t testing.TB, name string) string { return filepath.Join(t.TempDir(), name) }
