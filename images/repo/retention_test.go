package repo

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/local"
)

// retainingStore is a local store that claims a retention and records what Retain was asked.
type retainingStore struct {
	store.Backend
	period time.Duration
	mu     sync.Mutex
	kept   map[store.Handle]time.Time
}

func (s *retainingStore) Retention(context.Context) (time.Duration, error) { return s.period, nil }

func (s *retainingStore) Retain(_ context.Context, h store.Handle, until time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kept[h] = until
	return nil
}

type atClock struct{ t time.Time }

func (c atClock) Now() time.Time { return c.t }

// TestRenewRetention: 20 days after two backups, with a 30-day retention, the files a snapshot
// from yesterday needs (its packs, its manifest, every index file, the config) are retained
// for another 30 days; the packs and manifest of a snapshot older than the retention are not.
func TestRenewRetention(t *testing.T) {
	ctx := context.Background()
	dir, w := newRepo(t)
	now := time.Now().Add(20 * 24 * time.Hour)
	oldID := backupImage(t, w, "old.img", image{seed: 1, blocks: 12}, now.Add(-40*24*time.Hour))
	newID := backupImage(t, w, "new.img", image{seed: 2, blocks: 12}, now.Add(-24*time.Hour))
	w.Close()

	rs := &retainingStore{Backend: local.New(dir), period: 30 * 24 * time.Hour, kept: map[store.Handle]time.Time{}}
	r := testOpenOn(t, rs, func(o *Options) { o.Clock = atClock{now} })
	rep, err := r.RenewRetention(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Snapshots != 1 || rep.Renewed != rep.Files || rep.Renewed == 0 || !rep.Until.Equal(now.Add(rs.period)) {
		t.Fatalf("report %+v: want the one recent snapshot's files all renewed until now+30d", rep)
	}
	kept := func(k store.Kind, id ID) bool { _, ok := rs.kept[store.Handle{Kind: k, Name: id.String()}]; return ok }
	if !kept(store.KindSnapshots, newID) || kept(store.KindSnapshots, oldID) {
		t.Errorf("snapshot manifests: recent kept %v, old kept %v; want only the recent", kept(store.KindSnapshots, newID), kept(store.KindSnapshots, oldID))
	}
	if _, ok := rs.kept[store.Handle{Kind: store.KindConfig}]; !ok {
		t.Error("config not retained")
	}
	packsOf := func(sid ID) map[ID]bool {
		sn, err := r.LoadSnapshot(ctx, sid)
		if err != nil {
			t.Fatal(err)
		}
		out := map[ID]bool{}
		err = r.walkSnapshot(ctx, sn, map[ID]struct{}{}, refVisitor{blob: func(_ BlobType, id ID) {
			if p, ok := r.packOf(id); ok {
				out[p] = true
			}
		}, fail: func(string, ID, error) {}})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	recentPacks := packsOf(newID)
	for p := range recentPacks {
		if !kept(store.KindData, p) {
			t.Errorf("pack %s of the recent snapshot not retained", p.Short())
		}
	}
	for p := range packsOf(oldID) {
		if !recentPacks[p] && kept(store.KindData, p) {
			t.Errorf("pack %s only the old snapshot uses was retained", p.Short())
		}
	}

	// Right after the backups nothing is due: every file has its whole retention left.
	rs.kept = map[store.Handle]time.Time{}
	fresh := testOpenOn(t, rs, func(o *Options) { o.Clock = atClock{time.Now()} })
	if rep, err := fresh.RenewRetention(ctx); err != nil || rep.Renewed != 0 {
		t.Errorf("renewal right after writing: %+v, %v; want nothing renewed", rep, err)
	}
}
