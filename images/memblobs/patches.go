package memblobs

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/snapferry/snapferry/images/repo"
)

// PatchStore is a Store that also implements repo.PatchStore as its contract says, for tests of
// the sources until they can run against the real repository: a patch keeps its base's id and
// the listed sub-blocks only, LoadBlob rebuilds it from the base (which must be a whole blob)
// and checks the result against the id, so a wrong claim about unchanged sub-blocks fails the
// load like a damaged blob. Enabled is what PatchesEnabled reports.
type PatchStore struct {
	*Store
	Enabled atomic.Bool

	Patched atomic.Int64 // SavePatch calls that stored a patch

	mu      sync.Mutex // orders SaveBlob and SavePatch, so an id is stored once
	patches map[repo.ID]*patch
}

// patch is a block stored as the sub-blocks that differ from its base.
type patch struct {
	base    repo.ID
	n       int // the block's length
	subSize int
	changed []int
	pieces  [][]byte
}

var _ repo.PatchStore = (*PatchStore)(nil)

// NewPatchStore returns an empty store whose disk block size is blockSize bytes, with patches
// enabled.
func NewPatchStore(blockSize int) *PatchStore {
	s := &PatchStore{Store: New(blockSize), patches: map[repo.ID]*patch{}}
	s.Enabled.Store(true)
	return s
}

func (s *PatchStore) PatchesEnabled() bool { return s.Enabled.Load() }

// IsFullBlob reports whether id is stored as a whole data blob.
func (s *PatchStore) IsFullBlob(id repo.ID) bool { return s.Store.HasBlob(repo.DataBlob, id) }

func (s *PatchStore) isPatch(id repo.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.patches[id] != nil
}

func (s *PatchStore) HasBlob(t repo.BlobType, id repo.ID) bool {
	return s.Store.HasBlob(t, id) || (t == repo.DataBlob && s.isPatch(id))
}

func (s *PatchStore) SaveBlob(ctx context.Context, t repo.BlobType, id repo.ID, data []byte) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t == repo.DataBlob && s.patches[id] != nil {
		s.Saves.Add(1)
		return false, ctx.Err()
	}
	return s.Store.SaveBlob(ctx, t, id, data)
}

// SavePatch stores block as a patch of base keeping the changed sub-blocks, or whole when base
// is not a whole blob; it refuses arguments the contract rules out (sizes, order, range).
func (s *PatchStore) SavePatch(ctx context.Context, id, base repo.ID, block []byte, subSize int, changed []int) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if subSize <= 0 || len(block) == 0 {
		return false, fmt.Errorf("save patch %s: sub-block size %d, block %d bytes", id.Short(), subSize, len(block))
	}
	pieces := (len(block) + subSize - 1) / subSize
	for k, i := range changed {
		if i < 0 || i >= pieces || (k > 0 && i <= changed[k-1]) {
			return false, fmt.Errorf("save patch %s: changed sub-blocks %v of %d: not increasing and in range", id.Short(), changed, pieces)
		}
	}
	if len(changed) == 0 {
		return false, fmt.Errorf("save patch %s: no changed sub-blocks", id.Short())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.patches[id] != nil || s.Store.HasBlob(repo.DataBlob, id) {
		s.Saves.Add(1)
		return false, nil
	}
	if !s.IsFullBlob(base) {
		return s.Store.SaveBlob(ctx, repo.DataBlob, id, block)
	}
	p := &patch{base: base, n: len(block), subSize: subSize, changed: slices.Clone(changed)}
	for _, i := range changed {
		p.pieces = append(p.pieces, bytes.Clone(block[i*subSize:min(len(block), (i+1)*subSize)]))
	}
	s.patches[id] = p
	s.Patched.Add(1)
	return true, nil
}

// LoadBlob loads a whole blob, or rebuilds a patch from its base and checks it against id.
func (s *PatchStore) LoadBlob(ctx context.Context, t repo.BlobType, id repo.ID, buf []byte) ([]byte, error) {
	s.mu.Lock()
	p := s.patches[id]
	s.mu.Unlock()
	if t != repo.DataBlob || p == nil {
		return s.Store.LoadBlob(ctx, t, id, buf)
	}
	base, err := s.Store.LoadBlob(ctx, repo.DataBlob, p.base, nil)
	if err != nil {
		return nil, fmt.Errorf("load patch %s: base: %w", id.Short(), err)
	}
	out := append(buf[:0], base[:min(len(base), p.n)]...)
	out = append(out, make([]byte, p.n-len(out))...)
	for k, i := range p.changed {
		copy(out[i*p.subSize:], p.pieces[k])
	}
	if s.BlobID(out) != id {
		return nil, fmt.Errorf("load %s blob %s: patch rebuilt from %s does not match id", t, id.Short(), p.base.Short())
	}
	return out, nil
}

// Patch returns the base and changed sub-blocks of the patch stored under id.
func (s *PatchStore) Patch(id repo.ID) (base repo.ID, changed []int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.patches[id]; p != nil {
		return p.base, slices.Clone(p.changed), true
	}
	return repo.ID{}, nil, false
}

// Remove drops a whole blob, as a prune would.
func (s *Store) Remove(t repo.BlobType, id repo.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.blobs, key{t, id})
}
