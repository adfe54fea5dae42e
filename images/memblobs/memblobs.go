package memblobs

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"lukechampine.com/blake3"

	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/local"
)

type key struct {
	t  repo.BlobType
	id repo.ID
}

// Store is a goroutine-safe in-memory BlobStore.
type Store struct {
	blockSize int

	mu    sync.Mutex
	blobs map[key][]byte

	Saves atomic.Int64 // SaveBlob calls
	Added atomic.Int64 // SaveBlob calls that stored a new blob
	Loads atomic.Int64 // LoadBlob calls
}

// New returns an empty store whose disk block size is blockSize bytes.
func New(blockSize int) *Store {
	return &Store{blockSize: blockSize, blobs: map[key][]byte{}}
}

var _ repo.BlobStore = (*Store)(nil)

// BlobID is BLAKE3-256 of data, as in an unencrypted repository.
func (s *Store) BlobID(data []byte) repo.ID { return repo.ID(blake3.Sum256(data)) }

func (s *Store) SaveBlob(ctx context.Context, t repo.BlobType, id repo.ID, data []byte) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.Saves.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key{t, id}
	if _, ok := s.blobs[k]; ok {
		return false, nil
	}
	s.blobs[k] = append([]byte(nil), data...)
	s.Added.Add(1)
	return true, nil
}

func (s *Store) LoadBlob(ctx context.Context, t repo.BlobType, id repo.ID, buf []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.Loads.Add(1)
	s.mu.Lock()
	b, ok := s.blobs[key{t, id}]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("load %s blob %s: not in repository", t, id.Short())
	}
	if s.BlobID(b) != id {
		return nil, fmt.Errorf("load %s blob %s: content does not match id", t, id.Short())
	}
	return append(buf[:0], b...), nil
}

func (s *Store) HasBlob(t repo.BlobType, id repo.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.blobs[key{t, id}]
	return ok
}

func (s *Store) BlockSize() int { return s.blockSize }

// Len is the number of stored blobs of type t.
func (s *Store) Len(t repo.BlobType) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k := range s.blobs {
		if k.t == t {
			n++
		}
	}
	return n
}

// Put stores data under an id the caller chooses, bypassing the hash: tests use it to plant
// crafted or corrupt blobs.
func (s *Store) Put(t repo.BlobType, id repo.ID, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blobs[key{t, id}] = append([]byte(nil), data...)
}

// RandBytes returns n pseudo-random bytes determined by seed: incompressible test data that is
// never all zeros and differs between seeds.
func RandBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// LocalRepo creates a real repository in a temp folder of t with the given block size and
// chunk sizes (zero: defaults) and opens it; the caller gets back the folder for reopening.
func LocalRepo(t testing.TB, blockSize int, chunker repo.ChunkerParams) (string, *repo.Repository) {
	t.Helper()
	dir := t.TempDir() + "/repo"
	ctx := context.Background()
	if _, err := repo.Init(ctx, local.New(dir), repo.InitOptions{BlockSize: blockSize, Chunker: chunker}); err != nil {
		t.Fatalf("init repository %s: %v", dir, err)
	}
	return dir, OpenRepo(t, dir)
}

// OpenRepo opens the repository in dir for reading and writing; it is closed with the test.
func OpenRepo(t testing.TB, dir string) *repo.Repository {
	t.Helper()
	return OpenRepoOn(t, local.New(dir))
}

// OpenRepoOn opens the repository in be (a wrapper around its folder, say); it is closed with
// the test.
func OpenRepoOn(t testing.TB, be store.Backend) *repo.Repository {
	t.Helper()
	r, err := repo.Open(context.Background(), be, repo.Options{TempDir: t.TempDir(), Hostname: "test"})
	if err != nil {
		t.Fatalf("open repository %s: %v", be.Location(), err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// CommitAndReopen saves sn in r, closes r, reopens the repository in dir, checks it with
// ReadData and returns the reopened repository and the snapshot loaded back: the path every
// backup takes before a restore can see it.
func CommitAndReopen(t testing.TB, r *repo.Repository, dir string, sn *repo.Snapshot) (*repo.Repository, *repo.Snapshot) {
	t.Helper()
	ctx := context.Background()
	id, err := r.SaveSnapshot(ctx, sn)
	if err != nil {
		t.Fatalf("save snapshot: %v", err)
	}
	r.Close()
	r2 := OpenRepo(t, dir)
	rep, err := r2.Check(ctx, repo.CheckOptions{ReadData: true})
	if err != nil || !rep.OK() {
		t.Fatalf("check after commit: %v %+v", err, rep)
	}
	loaded, err := r2.LoadSnapshot(ctx, id)
	if err != nil {
		t.Fatalf("load snapshot: %v", err)
	}
	return r2, loaded
}
