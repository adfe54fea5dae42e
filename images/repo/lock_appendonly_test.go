package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron/clock"
	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/local"
)

// appendOnlyBackend behaves like `snapferry serve --append-only`: it removes only lock files
// it saved itself and refuses everything else with a permission error.
type appendOnlyBackend struct {
	store.Backend
	mu    sync.Mutex
	saved map[string]bool
}

func (b *appendOnlyBackend) Save(ctx context.Context, h store.Handle, rd io.Reader) error {
	err := b.Backend.Save(ctx, h, rd)
	if err == nil && h.Kind == store.KindLocks {
		b.mu.Lock()
		b.saved[h.Name] = true
		b.mu.Unlock()
	}
	return err
}

func (b *appendOnlyBackend) Remove(ctx context.Context, h store.Handle) error {
	b.mu.Lock()
	own := h.Kind == store.KindLocks && b.saved[h.Name]
	b.mu.Unlock()
	if !own {
		return fmt.Errorf("remove %s: refused by the server (append-only): %w", h, fs.ErrPermission)
	}
	return b.Backend.Remove(ctx, h)
}

// On an append-only store a client cannot remove another host's stale lock; it ignores it (it
// is abandoned either way) and backs up, while a live exclusive lock still stops it.
func TestAppendOnlyStoreStaleForeignLock(t *testing.T) {
	ctx := context.Background()
	dir, admin := newRepo(t)
	li := LockInfo{Host: "store-host", PID: 1, Exclusive: true, Created: t0, Time: t0}
	id, err := admin.writeLock(ctx, li)
	if err != nil {
		t.Fatal(err)
	}
	openClient := func(now time.Time) *Repository {
		be := &appendOnlyBackend{Backend: local.New(dir), saved: map[string]bool{}}
		r, err := Open(ctx, be, Options{TempDir: t.TempDir(), Hostname: "esx1", Clock: clock.Fixed(now)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	// Live (5 minutes old): the exclusive lock blocks the client as before.
	if _, err := openClient(t0.Add(5*time.Minute)).Lock(ctx, false); !errors.Is(err, ErrLocked) {
		t.Fatalf("lock next to a live exclusive lock: %v", err)
	}
	// Stale by both clocks: the client cannot remove it but goes ahead, and releases its own lock.
	path := local.New(dir).Path(store.Handle{Kind: store.KindLocks, Name: id.String()})
	past := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path, past, past); err != nil {
		t.Fatal(err)
	}
	client := openClient(t0.Add(time.Hour))
	lk, err := client.Lock(ctx, false)
	if err != nil {
		t.Fatalf("lock next to a stale lock the store will not remove: %v", err)
	}
	s := backupImage(t, client, "vm", image{seed: 60, blocks: 5}, t0.Add(time.Hour))
	if err := lk.Unlock(ctx); err != nil {
		t.Fatalf("release own lock: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the stale lock was removed through the append-only store: %v", err)
	}
	ids, _ := listIDs(ctx, local.New(dir), store.KindLocks)
	if len(ids) != 1 || ids[0] != id {
		t.Fatalf("locks left: %v (want only the stale one)", ids)
	}
	// The store host (unrestricted) clears it.
	if n, err := testOpen(t, dir, func(o *Options) { o.Clock = clock.Fixed(t0.Add(time.Hour)) }).RemoveStaleLocks(ctx, false); err != nil || n != 1 {
		t.Fatalf("unlock on the store host: %d, %v", n, err)
	}
	verifyImage(t, testOpen(t, dir, nil), s, image{seed: 60, blocks: 5})
	if !strings.Contains(li.String(), "store-host") {
		t.Fatalf("lock description %q", li)
	}
}
