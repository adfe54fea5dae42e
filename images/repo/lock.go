package repo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/snapferry/snapferry/images/store"
)

// LockInfo is the content of a lock file (JSON in locks/, named by the hash of its bytes).
type LockInfo struct {
	Host      string `json:"host"`
	PID       int    `json:"pid"`
	Start     string `json:"start,omitempty"` // process start token (Linux /proc); empty on ESXi
	Exclusive bool   `json:"exclusive"`
	// Prune marks the lock of a prune: it coexists with shared locks (backups never wait for a
	// prune, nor a prune for them) but excludes other prunes and exclusive locks. Builds
	// without the field read it as a shared lock, which their own exclusive locks respect.
	Prune   bool      `json:"prune,omitempty"`
	Created time.Time `json:"created"`
	Time    time.Time `json:"time"` // last refresh
	// Nonce makes every lock file unique: two locks of one process taken in the same clock tick
	// must not share a file name (files are named by their content).
	Nonce string `json:"nonce"`
}

func (li LockInfo) String() string {
	kind := "shared"
	if li.Exclusive {
		kind = "exclusive"
	} else if li.Prune {
		kind = "prune"
	}
	return fmt.Sprintf("%s lock of host %s pid %d", kind, li.Host, li.PID)
}

// LockError says who holds the conflicting lock; it matches ErrLocked.
type LockError struct {
	Holder LockInfo
	Age    time.Duration // since the holder last refreshed it
	Want   string        // "shared" or "exclusive"
}

func (e *LockError) Error() string {
	article := "a"
	if strings.HasPrefix(e.Want, "e") {
		article = "an" // an exclusive lock
	}
	return fmt.Sprintf("repository is locked: %s, refreshed %s ago, prevents taking %s %s lock; wait for it to finish "+
		"(a lock not refreshed for 30 minutes, or of a dead process on this host, is removed automatically)",
		e.Holder, e.Age.Round(time.Second), article, e.Want)
}

func (e *LockError) Is(target error) bool { return target == ErrLocked }

// Lock is a held repository lock. Shared locks (backups, check) coexist, also across hosts; an
// exclusive lock (prune) excludes every other lock. A goroutine rewrites the lock file every
// Options.LockRefresh so others can tell it from an abandoned one.
type Lock struct {
	r    *Repository
	mu   sync.Mutex
	info LockInfo
	name ID
	err  error // first refresh failure
	stop chan struct{}
	done chan struct{}
}

// Lock takes a shared or exclusive lock, removing stale locks on the way. A conflict returns a
// *LockError (errors.Is(err, ErrLocked)).
func (r *Repository) Lock(ctx context.Context, exclusive bool) (*Lock, error) {
	return r.lock(ctx, exclusive, false, nil)
}

// LockAnd is Lock that also runs also once this lock's file is stored, beside the check of the
// other locks, and returns when both are done: work that must happen under the lock but only
// reads (a backup's listings of its parents and of packs to adopt) then shares the check's
// round trip on a link. also's results must be dropped when LockAnd fails.
func (r *Repository) LockAnd(ctx context.Context, exclusive bool, also func(context.Context)) (*Lock, error) {
	return r.lock(ctx, exclusive, false, also)
}

// lock takes a shared, prune or exclusive lock (see LockInfo.Prune); also, if not nil, runs
// beside the lock check (LockAnd).
func (r *Repository) lock(ctx context.Context, exclusive, prune bool, also func(context.Context)) (*Lock, error) {
	host, err := r.hostname()
	if err != nil {
		return nil, err
	}
	now := r.opts.Clock.Now().UTC()
	var nonce [8]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("lock repository: random nonce: %w", err)
	}
	l := &Lock{r: r, info: LockInfo{Host: host, PID: os.Getpid(), Start: processStart(os.Getpid()),
		Exclusive: exclusive, Prune: prune, Created: now, Time: now, Nonce: hex.EncodeToString(nonce[:])}}
	// Write first, then look: a process that writes after our scan sees our lock in its own scan,
	// so two conflicting lockers cannot both miss each other (both may back off; callers retry).
	// Our own fresh file also tells the store's clock, which judges other locks' ages.
	if l.name, err = r.writeLock(ctx, l.info); err != nil {
		return nil, err
	}
	// The index check goes out with the lock listing: over a link the two cost one round trip.
	var syncErr error
	var synced sync.WaitGroup
	synced.Go(func() { syncErr = r.syncIndex(ctx) })
	if also != nil {
		synced.Go(func() { also(ctx) })
	}
	err = r.checkLocks(ctx, l.info, l.name)
	synced.Wait()
	if err == nil && syncErr != nil {
		err = fmt.Errorf("lock repository: %w", syncErr)
	}
	if err != nil {
		_ = r.be.Remove(context.WithoutCancel(ctx), store.Handle{Kind: store.KindLocks, Name: l.name.String()})
		return nil, err
	}
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	go l.refreshLoop()
	r.mu.Lock()
	r.locks[l] = struct{}{}
	r.mu.Unlock()
	return l, nil
}

func (r *Repository) hostname() (string, error) {
	if r.opts.Hostname != "" {
		return r.opts.Hostname, nil
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("lock repository: hostname: %w", err)
	}
	return h, nil
}

func (r *Repository) writeLock(ctx context.Context, li LockInfo) (ID, error) {
	b, err := json.Marshal(li)
	if err != nil {
		return ID{}, fmt.Errorf("encode lock: %w", err)
	}
	id, err := saveFile(ctx, r.be, store.KindLocks, b, r.crypt)
	if err != nil {
		return ID{}, fmt.Errorf("write %s: %w", li, err)
	}
	return id, nil
}

// checkLocks removes stale locks and fails if one that remains conflicts with want; own is our
// own, just written lock file.
func (r *Repository) checkLocks(ctx context.Context, want LockInfo, own ID) error {
	locks, err := r.listLocks(ctx, map[ID]LockInfo{own: want})
	if err != nil {
		return err
	}
	var storeNow time.Time
	if l, ok := findLock(locks, own); ok {
		storeNow = l.ModTime
	}
	host, _ := r.hostname()
	now := r.opts.Clock.Now()
	for _, l := range locks {
		if l.ID == own {
			continue
		}
		if reason := l.staleReason(now, storeNow, host, r.opts.LockStale); reason != "" {
			err := r.be.Remove(ctx, store.Handle{Kind: store.KindLocks, Name: l.ID.String()})
			// An append-only store refuses to remove locks this client did not write. A stale
			// lock is abandoned either way, so it is ignored as if removed; the store host's own
			// runs (prune, unlock) clear it.
			if err != nil && !errors.Is(err, store.ErrNotExist) && !errors.Is(err, fs.ErrPermission) {
				return fmt.Errorf("remove stale %s (%s): %w", l.Info, reason, err)
			}
			continue
		}
		if want.Exclusive || l.Info.Exclusive || (want.Prune && l.Info.Prune) {
			kind := "shared"
			if want.Exclusive {
				kind = "exclusive"
			} else if want.Prune {
				kind = "prune"
			}
			return &LockError{Holder: l.Info, Age: now.Sub(l.Info.Time), Want: kind}
		}
	}
	return nil
}

// StoredLock is one lock file.
type StoredLock struct {
	ID      ID
	Info    LockInfo
	ModTime time.Time // by the store's clock; zero if the store cannot tell
}

// ListLocks returns every lock file. Undecodable lock files are reported as exclusive locks of
// an unknown holder, so they block prune rather than being ignored; they go stale like others.
func (r *Repository) ListLocks(ctx context.Context) ([]StoredLock, error) {
	return r.listLocks(ctx, nil)
}

// listLocks is ListLocks with the content of lock files the caller wrote itself (known): those
// are not read back, which over a link is a round trip after the listing.
func (r *Repository) listLocks(ctx context.Context, known map[ID]LockInfo) ([]StoredLock, error) {
	files, err := listFiles(ctx, r.be, store.KindLocks)
	if err != nil {
		return nil, err
	}
	var out []StoredLock
	err = forEachInOrder(ctx, storeAhead, len(files), func(ctx context.Context, i int) ([]byte, error) {
		if _, ok := known[files[i].ID]; ok {
			return nil, nil
		}
		return loadFile(ctx, r.be, store.Handle{Kind: store.KindLocks, Name: files[i].ID.String()}, r.crypt)
	}, func(i int, b []byte, err error) error {
		fi := files[i]
		if li, ok := known[fi.ID]; ok {
			out = append(out, StoredLock{ID: fi.ID, Info: li, ModTime: fi.ModTime})
			return nil
		}
		if errors.Is(err, store.ErrNotExist) {
			return nil // released meanwhile
		}
		var li LockInfo
		if err == nil {
			err = json.Unmarshal(b, &li)
		}
		if err != nil {
			li = LockInfo{Host: "unknown (damaged lock file " + fi.ID.Short() + ")", Exclusive: true, Time: fi.ModTime}
		}
		out = append(out, StoredLock{ID: fi.ID, Info: li, ModTime: fi.ModTime})
		return nil
	})
	return out, err
}

// staleReason says why a lock is abandoned, or "" if it is live. Age counts by the holder's
// clock (the time in the file, against ours) and, when storeNow is known, also by the store's
// clock (the file's mtime against the mtime of a file we just wrote): only a lock old by both is
// stale, so an ESXi host whose clock is behind does not lose its lock to the others.
func (l StoredLock) staleReason(now, storeNow time.Time, host string, stale time.Duration) string {
	if age := now.Sub(l.Info.Time); age > stale {
		if storeNow.IsZero() || l.ModTime.IsZero() || storeNow.Sub(l.ModTime) > stale {
			return fmt.Sprintf("not refreshed for %s", age.Round(time.Second))
		}
	}
	if l.Info.Host == host && l.Info.PID > 0 && !processAlive(l.Info.PID, l.Info.Start) {
		return fmt.Sprintf("process %d is gone", l.Info.PID)
	}
	return ""
}

// RemoveStaleLocks deletes abandoned locks (what `snapferry unlock` does) and returns how many.
// With all set it removes every lock: only for a user who knows no process uses the repository.
func (r *Repository) RemoveStaleLocks(ctx context.Context, all bool) (int, error) {
	locks, err := r.ListLocks(ctx)
	if err != nil {
		return 0, err
	}
	host, _ := r.hostname()
	n := 0
	for _, l := range locks {
		if !all && l.staleReason(r.opts.Clock.Now(), time.Time{}, host, r.opts.LockStale) == "" {
			continue
		}
		err := r.be.Remove(ctx, store.Handle{Kind: store.KindLocks, Name: l.ID.String()})
		if err != nil && !errors.Is(err, store.ErrNotExist) {
			return n, fmt.Errorf("remove %s: %w", l.Info, err)
		}
		n++
	}
	return n, nil
}

func (l *Lock) refreshLoop() {
	defer close(l.done)
	t := time.NewTicker(l.r.opts.LockRefresh)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			if err := l.Refresh(context.Background()); err != nil {
				l.mu.Lock()
				if l.err == nil {
					l.err = err
				}
				l.mu.Unlock()
			}
		}
	}
}

// Refresh rewrites the lock file with the current time: the new file is written before the old
// one is removed, so the lock is never absent.
func (l *Lock) Refresh(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	info := l.info
	info.Time = l.r.opts.Clock.Now().UTC()
	name, err := l.r.writeLock(ctx, info)
	if err != nil {
		return fmt.Errorf("refresh lock: %w", err)
	}
	if name != l.name {
		err := l.r.be.Remove(ctx, store.Handle{Kind: store.KindLocks, Name: l.name.String()})
		if err != nil && !errors.Is(err, store.ErrNotExist) {
			return fmt.Errorf("refresh lock: remove old lock file: %w", err)
		}
	}
	l.info, l.name = info, name
	l.r.hook(HookLockRefreshed)
	return nil
}

// Err reports the first failed refresh: a long job should stop if its lock could not be kept.
func (l *Lock) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Info returns the lock's current content.
func (l *Lock) Info() LockInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.info
}

// Unlock stops refreshing and removes the lock file. Safe to call more than once.
func (l *Lock) Unlock(ctx context.Context) error {
	select {
	case <-l.stop:
		return nil
	default:
	}
	close(l.stop)
	<-l.done
	l.r.mu.Lock()
	delete(l.r.locks, l)
	l.r.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.r.be.Remove(ctx, store.Handle{Kind: store.KindLocks, Name: l.name.String()})
	if err != nil && !errors.Is(err, store.ErrNotExist) {
		return fmt.Errorf("unlock %s: %w", l.info, err)
	}
	return nil
}

// processAlive reports whether pid runs on this host and, when both tokens are known, is the
// same process (not a later one that reused the pid).
func processAlive(pid int, start string) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	if start != "" {
		if now := processStart(pid); now != "" && now != start {
			return false
		}
	}
	return true
}

// processStart returns the process start time in clock ticks from /proc/PID/stat, or "" where
// there is no /proc (ESXi): then only the pid identifies the process.
func processStart(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// The command name (field 2) may contain spaces and parentheses: fields count from the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return ""
	}
	return f[19] // field 22, starttime
}

func findLock(locks []StoredLock, id ID) (StoredLock, bool) {
	for _, l := range locks {
		if l.ID == id {
			return l, true
		}
	}
	return StoredLock{}, false
}

// verifyLocks fails if a lock this Repository holds was lost: its refresh failed, or another
// process removed it as stale (this process was stopped or cut off for 30 minutes). A prune may
// have run since, deleting blobs this run deduplicated against, so committing now could record a
// snapshot with missing data.
func (r *Repository) verifyLocks(ctx context.Context) error {
	r.mu.Lock()
	held := make([]*Lock, 0, len(r.locks))
	for l := range r.locks {
		held = append(held, l)
	}
	r.mu.Unlock()
	for _, l := range held {
		if err := l.Err(); err != nil {
			return fmt.Errorf("lock lost (%v); run the job again", err)
		}
		l.mu.Lock()
		h := store.Handle{Kind: store.KindLocks, Name: l.name.String()}
		info := l.info
		l.mu.Unlock()
		if _, err := r.be.Stat(ctx, h); err != nil {
			if errors.Is(err, store.ErrNotExist) {
				return fmt.Errorf("%s was removed by another process (it looked abandoned); "+
					"a prune may have run meanwhile, so this run's data cannot be trusted; run the job again", info)
			}
			return fmt.Errorf("verify %s: %w", info, err)
		}
	}
	return nil
}

// beginMaintenance starts check, prune or rebuild-index: it takes the lock and flushes what this
// value still has open, so the operation sees everything written before it. The returned func
// releases the lock.
func (r *Repository) beginMaintenance(ctx context.Context, exclusive bool, op string) (func(), error) {
	unlock, _, err := r.beginMaintenanceAs(ctx, exclusive, false, op)
	return unlock, err
}

// beginMaintenanceAs is beginMaintenance for any lock kind; it also returns the lock.
func (r *Repository) beginMaintenanceAs(ctx context.Context, exclusive, prune bool, op string) (func(), *Lock, error) {
	lk, err := r.lock(ctx, exclusive, prune, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	unlock := func() { _ = lk.Unlock(context.WithoutCancel(ctx)) }
	if err := r.Flush(ctx); err != nil {
		unlock()
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	return unlock, lk, nil
}
