package repo

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/local"
)

// Small sizes keep the tests fast while still making several packs and map chunks.
const (
	testBlockSize = 16 << 10
	testPackSize  = 96 << 10
)

func testInit(t testing.TB, dir string) {
	t.Helper()
	_, err := Init(context.Background(), local.New(dir), InitOptions{BlockSize: testBlockSize, PackSize: testPackSize,
		Chunker: ChunkerParams{Min: 4 << 10, Avg: 16 << 10, Max: 64 << 10}})
	if err != nil {
		t.Fatalf("init %s: %v", dir, err)
	}
}

func testOpen(t testing.TB, dir string, mod func(*Options)) *Repository {
	t.Helper()
	return testOpenOn(t, local.New(dir), mod)
}

// testOpenOn is testOpen on a given backend (a wrapper around the repository's folder).
func testOpenOn(t testing.TB, be store.Backend, mod func(*Options)) *Repository {
	t.Helper()
	o := Options{TempDir: t.TempDir(), Hostname: "testhost"}
	if mod != nil {
		mod(&o)
	}
	r, err := Open(context.Background(), be, o)
	if err != nil {
		t.Fatalf("open %s: %v", be.Location(), err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func newRepo(t testing.TB) (string, *Repository) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	testInit(t, dir)
	return dir, testOpen(t, dir, nil)
}

// image describes a synthetic disk: block i is random (seed, i) bytes, except that blocks where
// i%holeEvery == holeEvery-1 are holes and blocks where i%textEvery == 0 compress well.
type image struct {
	seed   uint64
	blocks int
}

func (im image) block(i int) []byte {
	if i%7 == 6 {
		return nil // hole
	}
	b := make([]byte, testBlockSize)
	var key [32]byte
	key[0], key[1], key[2] = byte(im.seed), byte(i), byte(i>>8)
	_, _ = rand.NewChaCha8(key).Read(b)
	if i%3 == 0 {
		// compressible: text-like repetition
		for j := range b {
			b[j] = "snapferry backs up VMs "[j%23]
		}
		b[0] = byte(im.seed)
		b[1] = byte(i)
	}
	return b
}

// backupImage stores im like images/disk does and commits a snapshot.
func backupImage(t testing.TB, r *Repository, source string, im image, when time.Time) ID {
	t.Helper()
	id, err := tryBackupImage(r, source, im, when)
	if err != nil {
		t.Fatalf("backup %s: %v", source, err)
	}
	return id
}

func tryBackupImage(r *Repository, source string, im image, when time.Time) (ID, error) {
	ctx := context.Background()
	disk := Disk{Name: "disk0", Path: source, Format: "raw", Size: int64(im.blocks) * testBlockSize, BlockSize: testBlockSize}
	perChunk := 5 // small chunks so a snapshot names several
	for first := 0; first < im.blocks; first += perChunk {
		c := BlockMapChunk{First: uint64(first)}
		for i := first; i < min(first+perChunk, im.blocks); i++ {
			b := im.block(i)
			if b == nil {
				c.IDs = append(c.IDs, ID{})
				continue
			}
			id := r.BlobID(b)
			if _, err := r.SaveBlob(ctx, DataBlob, id, b); err != nil {
				return ID{}, err
			}
			c.IDs = append(c.IDs, id)
			disk.Allocated += int64(len(b))
		}
		mb, _ := c.MarshalBinary()
		cid := r.BlobID(mb)
		if _, err := r.SaveBlob(ctx, TreeBlob, cid, mb); err != nil {
			return ID{}, err
		}
		disk.Map = append(disk.Map, cid)
	}
	sn := &Snapshot{Time: when, Host: "testhost", Kind: SnapshotImage, Source: source, Disks: []Disk{disk}}
	return r.SaveSnapshot(ctx, sn)
}

// verifyImage restores a snapshot's disk in memory and compares every block with im.
func verifyImage(t testing.TB, r *Repository, sid ID, im image) {
	t.Helper()
	ctx := context.Background()
	sn, err := r.LoadSnapshot(ctx, sid)
	if err != nil {
		t.Fatalf("load snapshot %s: %v", sid.Short(), err)
	}
	n := 0
	for _, cid := range sn.Disks[0].Map {
		mb, err := r.LoadBlob(ctx, TreeBlob, cid, nil)
		if err != nil {
			t.Fatalf("snapshot %s: load map chunk: %v", sid.Short(), err)
		}
		var c BlockMapChunk
		if err := c.UnmarshalBinary(mb); err != nil {
			t.Fatal(err)
		}
		for j, id := range c.IDs {
			i := int(c.First) + j
			want := im.block(i)
			if id.IsZero() {
				if want != nil {
					t.Fatalf("snapshot %s: block %d is a hole, want data", sid.Short(), i)
				}
				n++
				continue
			}
			got, err := r.LoadBlob(ctx, DataBlob, id, nil)
			if err != nil {
				t.Fatalf("snapshot %s: block %d: %v", sid.Short(), i, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("snapshot %s: block %d differs", sid.Short(), i)
			}
			n++
		}
	}
	if n != im.blocks {
		t.Fatalf("snapshot %s: %d blocks, want %d", sid.Short(), n, im.blocks)
	}
}

func mustCheck(t testing.TB, r *Repository, readData bool) *CheckReport {
	t.Helper()
	rep, err := r.Check(context.Background(), CheckOptions{ReadData: readData})
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	if !rep.OK() {
		t.Fatalf("check found errors: %v", rep.Errors)
	}
	return rep
}

func countFiles(t testing.TB, be store.Backend, k store.Kind) int {
	t.Helper()
	n := 0
	if err := be.List(context.Background(), k, func(store.FileInfo) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func isErr(err, target error) bool { return errors.Is(err, target) }
