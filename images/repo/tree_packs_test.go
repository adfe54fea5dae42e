package repo

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/local"
	"github.com/snapferry/snapferry/images/store/metacache"
)

// A repository written before tree packs has packs holding tree and data blobs together. It
// still reads, checks and takes new backups; a cold cache reads its trees by range and never
// fetches a mixed pack whole; and prune's repack sorts the blobs of a mixed pack into one pack
// per kind.
func TestMixedPacksStillWork(t *testing.T) {
	ctx := context.Background()
	dir, _ := newRepo(t)
	old := testOpen(t, dir, func(o *Options) { o.PackSize = 4 << 20; o.Packers = 1 })
	// How a repository wrote before: tree blobs went into the data blobs' packs.
	old.packs[1] = packSlots{ready: old.packs[0].ready, free: old.packs[0].free}
	orphan, kept := image{seed: 60, blocks: 20}, image{seed: 61, blocks: 10}
	for i := 0; i < orphan.blocks; i++ {
		if b := orphan.block(i); b != nil {
			mustSave(t, old, DataBlob, b)
		}
	}
	s := backupImage(t, old, "vm", kept, t0)
	if kinds := packKinds(t, old); len(kinds) != 1 || kinds[0] != 3 {
		t.Fatalf("pack kinds %v, want one mixed pack (3)", kinds)
	}
	old.Close()

	inner := &loadLog{Backend: local.New(dir)}
	r := testOpenOn(t, metacache.New(inner, t.TempDir()), func(o *Options) { o.PackSize = 4 << 20 })
	verifyImage(t, r, s, kept)
	for _, n := range inner.lengths() {
		if n == 0 || n > 1<<20 {
			t.Fatalf("a cold read of a mixed repository loaded %d bytes of a pack at once: want ranges of blobs", n)
		}
	}
	mustCheck(t, r, true)
	s2 := backupImage(t, r, "vm2", image{seed: 62, blocks: 10}, t0)

	rep, err := r.Prune(ctx, PruneOptions{})
	if err != nil || rep.PacksRepacked != 1 {
		t.Fatalf("prune: %+v, %v; want the mixed pack repacked", rep, err)
	}
	for _, k := range packKinds(t, r) {
		if k == 3 {
			t.Fatalf("pack kinds after the repack %v: a pack still holds trees and data", packKinds(t, r))
		}
	}
	r2 := testOpen(t, dir, nil)
	verifyImage(t, r2, s, kept)
	verifyImage(t, r2, s2, image{seed: 62, blocks: 10})
	mustCheck(t, r2, true)
}

// A tree pack is fetched whole once by a cold cache, and its trees are served from the cache
// after; a data pack never is, nor is a tree pack for a tree longer than the cache keeps (that
// would repeat every run). Plain and encrypted (the pack header is sealed).
func TestTreePackFetchedWholeOnce(t *testing.T) {
	for _, enc := range []bool{false, true} {
		t.Run(fmt.Sprintf("encrypted=%v", enc), func(t *testing.T) {
			ctx := context.Background()
			dir, r, mod := newRepoEncryptedIf(t, enc)
			ims := []image{{seed: 70, blocks: 30}, {seed: 71, blocks: 30}}
			var snaps []ID
			for i, im := range ims {
				snaps = append(snaps, backupImage(t, r, fmt.Sprintf("vm%d", i), im, t0))
			}
			kinds := packKinds(t, r)                  // before the big tree, which goes into a tree pack of its own
			big := make([]byte, metacache.MaxRange+1) // random: as long when stored
			_, _ = rand.NewChaCha8([32]byte{72}).Read(big)
			bigID := mustSave(t, r, TreeBlob, big)
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			r.Close()

			inner := &loadLog{Backend: local.New(dir)}
			cacheDir := t.TempDir()
			cold := testOpenOn(t, metacache.New(inner, cacheDir), mod)
			for i, im := range ims {
				verifyImage(t, cold, snaps[i], im)
			}
			whole := 0
			for _, n := range inner.lengths() {
				if n == 0 {
					whole++
				}
			}
			trees := 0
			for _, k := range kinds {
				if k == 2 {
					trees++
				}
			}
			// Each image reads its block maps (trees) and its blocks: the tree packs come whole,
			// one load each; the data blobs by range.
			if trees == 0 || whole != trees {
				t.Errorf("%d whole pack loads for %d tree packs (kinds %v), want one each", whole, trees, kinds)
			}
			cold.Close()

			inner.reset()
			warm := testOpenOn(t, metacache.New(inner, cacheDir), mod)
			if _, err := warm.LoadBlob(ctx, TreeBlob, bigID, nil); err != nil {
				t.Fatal(err)
			}
			if got := inner.lengths(); len(got) != 1 || got[0] == 0 || got[0] > int64(len(big))+64 {
				t.Errorf("loading a tree the cache does not keep: pack loads of %v bytes, want one of the tree alone", got)
			}
		})
	}
}

// packKinds returns, per pack of r's index, 1 for data blobs only, 2 for trees only, 3 for both.
func packKinds(t *testing.T, r *Repository) []int {
	t.Helper()
	kinds := map[uint32]int{}
	r.mu.Lock()
	r.idx.forEach(func(_ ID, e indexEntry) {
		kinds[e.pack] |= int(e.typ)
	})
	r.mu.Unlock()
	var out []int
	for _, k := range kinds {
		out = append(out, k)
	}
	return out
}

// loadLog records the length of every pack Load reaching the store (0: the whole pack).
type loadLog struct {
	store.Backend
	mu   sync.Mutex
	lens []int64
}

func (l *loadLog) Load(ctx context.Context, h store.Handle, off, n int64) (io.ReadCloser, error) {
	if h.Kind == store.KindData {
		l.mu.Lock()
		l.lens = append(l.lens, n)
		l.mu.Unlock()
	}
	return l.Backend.Load(ctx, h, off, n)
}

func (l *loadLog) reset() {
	l.mu.Lock()
	l.lens = nil
	l.mu.Unlock()
}

func (l *loadLog) lengths() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int64(nil), l.lens...)
}
