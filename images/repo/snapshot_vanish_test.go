package repo

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/local"
)

// vanishingStore removes one snapshot file when it is first loaded, so it was listed but is gone: what a
// concurrent forget, or a host-state save replacing its older snapshot, does between the moment
// a prune, check or repair lists the snapshots and the moment it loads them.
type vanishingStore struct {
	store.Backend
	victim  ID
	mu      sync.Mutex
	removed bool
}

func (s *vanishingStore) Load(ctx context.Context, h store.Handle, offset, length int64) (io.ReadCloser, error) {
	if h.Kind == store.KindSnapshots && h.Name == s.victim.String() {
		s.mu.Lock()
		if !s.removed {
			s.removed = true
			if err := s.Backend.Remove(ctx, h); err != nil {
				s.mu.Unlock()
				return nil, err
			}
		}
		s.mu.Unlock()
	}
	return s.Backend.Load(ctx, h, offset, length)
}

// TestSnapshotRemovedAfterListing: a snapshot removed after it was listed is not a user of any
// blob and not damaged: prune goes on (and keeps what the other snapshot needs), check reports
// nothing, repair finds nothing to do. Before, prune stopped with "no matching snapshot" and
// check called the vanished snapshot damaged.
func TestSnapshotRemovedAfterListing(t *testing.T) {
	ctx := context.Background()
	im := image{seed: 91, blocks: 20}
	for _, op := range []string{"prune", "check", "repair"} {
		t.Run(op, func(t *testing.T) {
			dir, w := newRepo(t)
			gone := backupImage(t, w, "host-state", image{seed: 92, blocks: 6}, t0)
			kept := backupImage(t, w, "vm", im, t0.Add(time.Hour))
			w.Close()
			vs := &vanishingStore{Backend: local.New(dir), victim: gone}
			r := testOpenOn(t, vs, nil)
			var err error
			switch op {
			case "prune":
				var rep *PruneReport
				if rep, err = r.Prune(ctx, PruneOptions{}); err == nil && rep.PacksDropped == 0 {
					t.Errorf("prune kept the packs of the vanished snapshot: %+v", rep)
				}
			case "check":
				var rep *CheckReport
				if rep, err = r.Check(ctx, CheckOptions{ReadData: true}); err == nil && len(rep.DamagedSnapshots) != 0 {
					t.Errorf("check called %v damaged; the only change was a snapshot removed after listing", rep.DamagedSnapshots)
				}
			case "repair":
				_, err = r.Repair(ctx, RepairOptions{})
			}
			if err != nil {
				t.Fatalf("%s with a snapshot removed after listing: %v", op, err)
			}
			if !vs.removed {
				t.Fatal("the snapshot was never loaded, so the test proved nothing")
			}
			verifyImage(t, testOpen(t, dir, nil), kept, im)
		})
	}
}
