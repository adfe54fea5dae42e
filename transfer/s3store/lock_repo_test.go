package s3store_test

import (
	"context"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/transfer/s3store"
	"github.com/snapferry/snapferry/transfer/s3store/rgwtest"
)

type shiftedClock struct{ d time.Duration }

func (c shiftedClock) Now() time.Time { return time.Now().Add(c.d) }

// TestObjectLockRepository: a repository on an Object Lock bucket. Forget and prune work (the
// snapshot and its packs disappear from the repository), yet the server still holds every
// version; Undelete brings them back and the snapshot restores and checks clean: what someone
// with the keys deletes is not lost within the retention. Renewal extends the packs a recent
// snapshot needs.
func TestObjectLockRepository(t *testing.T) {
	srv := rgwtest.Get(t)
	ctx := context.Background()
	s := newStore(t, srv, s3store.Options{LockFor: 24 * time.Hour})
	initRepo(t, s, "")
	folder := makeFolder(t, 1)
	r := openRepo(t, s, "")
	sid := backupFolder(t, r, folder, "host-a")
	r.Close()

	start := time.Now()
	// Fourteen hours on, more than half the day's retention has passed: renewal is due.
	later := openRepoWith(t, s, func(o *repo.Options) { o.Clock = shiftedClock{14 * time.Hour} })
	rep, err := later.RenewRetention(ctx)
	if err != nil || rep.Snapshots != 1 || rep.Renewed == 0 || rep.Renewed != rep.Files {
		t.Fatalf("renew: %+v, %v", rep, err)
	}
	var pack string
	if err := s.List(ctx, store.KindData, func(fi store.FileInfo) error { pack = fi.Name; return nil }); err != nil {
		t.Fatal(err)
	}
	until, err := s.RetainedUntil(ctx, store.Handle{Kind: store.KindData, Name: pack})
	if err != nil || until.Before(start.Add(37*time.Hour)) {
		t.Errorf("pack retained until %s (%v), want about 38 hours from now", until, err)
	}

	// Forget and prune as the thief would (two days on, so prune's grace is past).
	thief := openRepoWith(t, s, func(o *repo.Options) { o.Clock = shiftedClock{48 * time.Hour} })
	if err := thief.RemoveSnapshot(ctx, sid); err != nil {
		t.Fatal(err)
	}
	prep, err := thief.Prune(ctx, repo.PruneOptions{})
	if err != nil {
		t.Fatalf("prune on an Object Lock bucket: %v", err)
	}
	if prep.PacksDeleted == 0 {
		t.Fatalf("prune deleted no packs: %+v", prep)
	}
	thief.Close()
	if n := countFiles(t, s, store.KindData); n != 0 {
		t.Fatalf("%d packs visible after prune, want 0", n)
	}

	if n, err := s.Undelete(ctx, start); err != nil || n == 0 {
		t.Fatalf("undelete: %d, %v", n, err)
	}
	back := openRepo(t, s, "")
	mustCheck(t, back)
	assertRestores(t, back, sid, folder)
}

func openRepoWith(t *testing.T, be store.Backend, mod func(*repo.Options)) *repo.Repository {
	t.Helper()
	o := repo.Options{TempDir: t.TempDir(), Hostname: "test"}
	mod(&o)
	r, err := repo.Open(context.Background(), be, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func countFiles(t *testing.T, be store.Backend, k store.Kind) int {
	t.Helper()
	n := 0
	if err := be.List(context.Background(), k, func(store.FileInfo) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}
