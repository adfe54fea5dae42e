package repo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron/clock"
	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/local"
)

func TestLocksSharedAndExclusive(t *testing.T) {
	ctx := context.Background()
	dir, r := newRepo(t)
	other := testOpen(t, dir, nil)
	s1, err := r.Lock(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := other.Lock(ctx, false)
	if err != nil {
		t.Fatalf("second shared lock: %v", err)
	}
	_, err = other.Lock(ctx, true)
	var le *LockError
	if !errors.Is(err, ErrLocked) || !errors.As(err, &le) || le.Holder.Host != "testhost" || le.Holder.PID == 0 {
		t.Fatalf("exclusive over shared: want a LockError naming the holder, got %v", err)
	}
	if !strings.Contains(err.Error(), "host testhost pid") {
		t.Errorf("lock error does not name the holder: %v", err)
	}
	if n := countFiles(t, r.Backend(), store.KindLocks); n != 2 {
		t.Errorf("a refused lock left its file: %d lock files", n)
	}
	s1.Unlock(ctx)
	s2.Unlock(ctx)
	s2.Unlock(ctx) // twice is harmless
	ex, err := other.Lock(ctx, true)
	if err != nil {
		t.Fatalf("exclusive on a free repository: %v", err)
	}
	if _, err := r.Lock(ctx, false); !errors.Is(err, ErrLocked) {
		t.Errorf("shared over exclusive: %v", err)
	}
	if _, err := r.Prune(ctx, PruneOptions{}); !errors.Is(err, ErrLocked) {
		t.Errorf("prune while locked: %v", err)
	}
	ex.Unlock(ctx)
	if n := countFiles(t, r.Backend(), store.KindLocks); n != 0 {
		t.Errorf("%d lock files after unlock", n)
	}
}

func TestLockRefreshAndStaleness(t *testing.T) {
	ctx := context.Background()
	dir, _ := newRepo(t)
	refreshed := make(chan struct{}, 10)
	holder := testOpen(t, dir, func(o *Options) {
		o.LockRefresh = 20 * time.Millisecond
		o.Hook = func(p string) {
			if p == HookLockRefreshed {
				select {
				case refreshed <- struct{}{}:
				default:
				}
			}
		}
	})
	lk, err := holder.Lock(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	first := lk.Info().Time
	select {
	case <-refreshed:
	case <-time.After(5 * time.Second):
		t.Fatal("lock was never refreshed")
	}
	if n := countFiles(t, holder.Backend(), store.KindLocks); n != 1 {
		t.Errorf("%d lock files after refresh, want 1", n)
	}
	if !lk.Info().Time.After(first) && lk.Err() == nil {
		t.Log("clock did not advance between refreshes")
	}
	lk.Unlock(ctx)

	// A lock of another host not refreshed for 31 minutes is stale; at 29 minutes it is not.
	li := LockInfo{Host: "far-away", PID: 4242, Exclusive: true, Created: t0, Time: t0}
	far, err := holder.writeLock(ctx, li)
	if err != nil {
		t.Fatal(err)
	}
	young := testOpen(t, dir, func(o *Options) { o.Clock = clock.Fixed(t0.Add(29 * time.Minute)) })
	if _, err := young.Lock(ctx, false); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "far-away") {
		t.Fatalf("lock of another host 29 minutes old: %v", err)
	}
	// 31 minutes by our clock, but the store wrote the file just now: the holder's clock is
	// behind ours, its lock is live.
	old := testOpen(t, dir, func(o *Options) { o.Clock = clock.Fixed(t0.Add(31 * time.Minute)) })
	if _, err := old.Lock(ctx, false); !errors.Is(err, ErrLocked) {
		t.Fatalf("lock of a host with a slow clock, fresh by the store's clock: %v", err)
	}
	// Old by both clocks: stale.
	path := local.New(dir).Path(store.Handle{Kind: store.KindLocks, Name: far.String()})
	past := time.Now().Add(-31 * time.Minute)
	if err := os.Chtimes(path, past, past); err != nil {
		t.Fatal(err)
	}
	lk2, err := old.Lock(ctx, true)
	if err != nil {
		t.Fatalf("lock over a lock 31 minutes old by both clocks: %v", err)
	}
	lk2.Unlock(ctx)
}

func TestLockOfDeadProcessIsBroken(t *testing.T) {
	ctx := context.Background()
	_, r := newRepo(t)
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid
	now := time.Now().UTC()
	if _, err := r.writeLock(ctx, LockInfo{Host: "testhost", PID: dead, Exclusive: true, Created: now, Time: now}); err != nil {
		t.Fatal(err)
	}
	// The same pid on another host says nothing about liveness: that lock holds.
	if _, err := r.writeLock(ctx, LockInfo{Host: "elsewhere", PID: dead, Created: now, Time: now.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	lk, err := r.Lock(ctx, false)
	if err != nil {
		t.Fatalf("shared lock over a dead process's exclusive lock: %v", err)
	}
	locks, _ := r.ListLocks(ctx)
	for _, l := range locks {
		if l.Info.PID == dead && l.Info.Host == "testhost" {
			t.Errorf("the dead process's lock was not removed")
		}
	}
	if len(locks) != 2 {
		t.Errorf("%d locks, want ours and the other host's", len(locks))
	}
	lk.Unlock(ctx)
	if _, err := r.Lock(ctx, true); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "elsewhere") {
		t.Fatalf("exclusive lock with a live lock of another host: %v", err)
	}
	if n, err := r.RemoveStaleLocks(ctx, true); err != nil || n != 1 {
		t.Fatalf("remove all locks: %d, %v", n, err)
	}
}

func TestProcessStartToken(t *testing.T) {
	cmd := exec.Command("sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	tok := processStart(cmd.Process.Pid)
	if tok == "" {
		t.Skip("no /proc: start tokens unavailable (as on ESXi)")
	}
	if !processAlive(cmd.Process.Pid, tok) {
		t.Error("running process reported dead")
	}
	if processAlive(cmd.Process.Pid, tok+"1") {
		t.Error("a different start token (pid reused) reported alive")
	}
}

// TestSnapshotRefusedAfterLockLost: a backup whose lock another process removed (it looked
// abandoned) must not commit, because a prune may have deleted data it deduplicated against.
func TestSnapshotRefusedAfterLockLost(t *testing.T) {
	ctx := context.Background()
	dir, r := newRepo(t)
	lk, err := r.Lock(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Unlock(ctx)
	backupImage(t, r, "vm", image{seed: 95, blocks: 4}, t0)
	other := testOpen(t, dir, nil)
	if n, err := other.RemoveStaleLocks(ctx, true); err != nil || n != 1 {
		t.Fatalf("remove locks: %d, %v", n, err)
	}
	_, err = tryBackupImage(r, "vm", image{seed: 96, blocks: 4}, t0.Add(time.Hour))
	if err == nil || !strings.Contains(err.Error(), "removed by another process") {
		t.Fatalf("backup after losing the lock: %v", err)
	}
	if n := countFiles(t, r.Backend(), store.KindSnapshots); n != 1 {
		t.Errorf("%d snapshots, want only the one from before the lock was lost", n)
	}
}

// TestExclusiveLockRace: many lockers at once, some exclusive; never may an exclusive lock be
// held together with any other lock.
func TestExclusiveLockRace(t *testing.T) {
	ctx := context.Background()
	dir, _ := newRepo(t)
	var holders, exclusive atomic.Int32
	var wg sync.WaitGroup
	violations := make(chan string, 100)
	for w := 0; w < 8; w++ {
		r := testOpen(t, dir, nil)
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for round := 0; round < 15; round++ {
				ex := (w+round)%3 == 0
				lk, err := r.Lock(ctx, ex)
				if errors.Is(err, ErrLocked) {
					continue
				}
				if err != nil {
					violations <- err.Error()
					return
				}
				n := holders.Add(1)
				if ex {
					exclusive.Add(1)
				}
				if e := exclusive.Load(); e > 1 || (e == 1 && n > 1) {
					violations <- fmt.Sprintf("%d holders, %d exclusive", n, e)
				}
				time.Sleep(time.Millisecond)
				if ex {
					exclusive.Add(-1)
				}
				holders.Add(-1)
				lk.Unlock(ctx)
			}
		}(w)
	}
	wg.Wait()
	close(violations)
	for v := range violations {
		t.Error(v)
	}
}

func TestCloseReleasesLocks(t *testing.T) {
	ctx := context.Background()
	dir, _ := newRepo(t)
	r := testOpen(t, dir, nil)
	if _, err := r.Lock(ctx, true); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if n := countFiles(t, r.Backend(), store.KindLocks); n != 0 {
		t.Fatalf("%d lock files after Close", n)
	}
}
