package repo

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/local"
)

// onSnapshotListing runs fn once, before the nth listing of snapshots returns: the moment a
// backup beside a prune commits between the prune's steps.
type onSnapshotListing struct {
	store.Backend
	nth int
	fn  func()
	mu  sync.Mutex
	n   int
}

func (s *onSnapshotListing) List(ctx context.Context, k store.Kind, fn func(store.FileInfo) error) error {
	if k == store.KindSnapshots {
		s.mu.Lock()
		s.n++
		run := s.n == s.nth
		s.mu.Unlock()
		if run {
			s.fn()
		}
	}
	return s.Backend.List(ctx, k, fn)
}

// TestPruneRescuesASnapshotWhoseIndexCameAfterItsOwn: a backup that writes its packs, index file
// and snapshot after prune loaded its new index, but before prune looks for snapshots committed
// meanwhile, names blobs only its own index file knows. Prune loads the index again before
// judging such snapshots: it finishes, and the backup's snapshot is whole. Before, prune stopped
// with "a prune ran meanwhile and ... blob not found" (CI: TestManyWritersAcrossPrune/local).
func TestPruneRescuesASnapshotWhoseIndexCameAfterItsOwn(t *testing.T) {
	ctx := context.Background()
	dir, w := newRepo(t)
	old := backupImage(t, w, "old", image{seed: 101, blocks: 12}, t0)
	backupImage(t, w, "kept", image{seed: 102, blocks: 12}, t0.Add(time.Hour))
	if err := w.RemoveSnapshot(ctx, old); err != nil {
		t.Fatal(err)
	}
	w.Close()

	im := image{seed: 103, blocks: 12}
	var late ID
	be := &onSnapshotListing{Backend: local.New(dir), nth: 2, fn: func() {
		b := testOpen(t, dir, func(o *Options) { o.Hostname = "latehost" })
		late = backupImage(t, b, "late", im, t0.Add(2*time.Hour))
		b.Close()
	}}
	r := testOpenOn(t, be, nil)
	rep, err := r.Prune(ctx, PruneOptions{})
	if err != nil {
		t.Fatalf("prune with a backup committed between its steps: %v", err)
	}
	if late.IsZero() {
		t.Fatal("the backup beside the prune never ran: the test proved nothing")
	}
	if rep.PacksDropped == 0 {
		t.Errorf("prune dropped nothing: %+v", rep)
	}
	r2 := testOpen(t, dir, nil)
	verifyImage(t, r2, late, im)
	mustCheck(t, r2, true)
}
