package appliance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gofrs/flock"
)

// VMLock is an exclusive per-VM lock held by one job: two jobs never snapshot or restore the same
// VM at once. It is an flock(2) on a file in a state folder, so a killed job releases it with its
// process and no stale lock survives.
type VMLock struct {
	fl   *flock.Flock
	path string
}

// lockPollInterval is how often a waiting job retries the lock.
const lockPollInterval = 100 * time.Millisecond

// LockVM takes the lock for key (a VM id, or a VM name for a restore target) in dir, waiting up to
// wait for another job to release it (wait <= 0 tries once). The error when it stays held wraps
// ErrLocked and names the holder's pid.
func LockVM(ctx context.Context, dir, key string, wait time.Duration) (*VMLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lock VM %s: create lock folder: %w", key, err)
	}
	path := filepath.Join(dir, "vm-"+lockFileKey(key)+".lock")
	fl := flock.New(path)
	var ok bool
	var err error
	if wait <= 0 {
		ok, err = fl.TryLock()
	} else {
		wctx, cancel := context.WithTimeout(ctx, wait)
		ok, err = fl.TryLockContext(wctx, lockPollInterval)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("lock VM %s (%s): %w", key, path, err)
	}
	if !ok {
		holder := "another process"
		if b, rerr := os.ReadFile(path); rerr == nil && len(strings.TrimSpace(string(b))) > 0 {
			holder = "pid " + strings.TrimSpace(string(b))
		}
		return nil, fmt.Errorf("lock VM %s: held by %s (waited %s; use a longer --wait or try later): %w",
			key, holder, wait, ErrLocked)
	}
	// The pid is informational only (for the message above); the flock is the lock.
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		_ = fl.Unlock()
		return nil, fmt.Errorf("lock VM %s: write %s: %w", key, path, err)
	}
	return &VMLock{fl: fl, path: path}, nil
}

// Unlock releases the lock. The file stays: removing it would race with a waiter that opened it.
func (l *VMLock) Unlock() error {
	if err := l.fl.Unlock(); err != nil {
		return fmt.Errorf("unlock %s: %w", l.path, err)
	}
	return nil
}

// lockFileKey keeps letters, digits, '-', '_' and '.' and hex-escapes the rest, so any VM name maps
// to one safe file name and different names never collide.
func lockFileKey(key string) string {
	var b strings.Builder
	for _, r := range key {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			fmt.Fprintf(&b, "%%%x", r)
		}
	}
	return b.String()
}
