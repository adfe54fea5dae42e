package repo

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron/testkit"
	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/local"
)

// TestStoreFull fills a real 8 MiB tmpfs: the backup fails with a clear, permanent "store full"
// error, no snapshot is recorded, and the earlier snapshot still verifies.
func TestStoreFull(t *testing.T) {
	ctx := context.Background()
	mnt := t.TempDir()
	var be store.Backend
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt).CombinedOutput(); err != nil {
		if testkit.CI() {
			t.Fatalf("mount an 8 MiB tmpfs (CI runs as root): %v: %s", err, out)
		}
		t.Logf("no tmpfs (%v: %s); using a backend that runs out of space after 8 MiB", err, strings.TrimSpace(string(out)))
		be = &fullBackend{Backend: local.New(filepath.Join(mnt, "repo")), limit: 8 << 20}
	} else {
		t.Cleanup(func() {
			if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
				t.Errorf("umount %s: %v: %s", mnt, err, out)
			}
		})
		be = local.New(filepath.Join(mnt, "repo"))
	}
	if _, err := Init(ctx, be, InitOptions{BlockSize: testBlockSize, PackSize: 256 << 10}); err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, be, Options{TempDir: t.TempDir(), Hostname: "testhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	small := image{seed: 80, blocks: 20}
	s1 := backupImage(t, r, "small", small, t0)

	big := image{seed: 81, blocks: 1200} // ~12 MiB stored: does not fit
	_, err = tryBackupImage(r, "big", big, t0.Add(time.Hour))
	if err == nil {
		t.Fatal("a backup larger than the store succeeded")
	}
	if !isErr(err, ErrStoreFull) || !IsPermanent(err) || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("want a permanent store-full error, got %v", err)
	}
	// The producer is stopped at once, and nothing more may be committed on top of the failed run.
	if _, err := r.SaveBlob(ctx, DataBlob, r.BlobID([]byte("more")), []byte("more")); !isErr(err, ErrStoreFull) {
		t.Errorf("SaveBlob after the store filled up: want the store-full error again, got %v", err)
	}
	if _, err := r.SaveSnapshot(ctx, &Snapshot{Time: t0, Source: "big", Kind: SnapshotImage}); err == nil {
		t.Error("a snapshot was committed after a lost pack upload")
	}
	if n := countFiles(t, be, store.KindSnapshots); n != 1 {
		t.Errorf("%d snapshots after the failed backup, want 1", n)
	}
	r2, err := Open(ctx, be, Options{TempDir: t.TempDir(), Hostname: "testhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	verifyImage(t, r2, s1, small)
	rep, err := r2.Check(ctx, CheckOptions{ReadData: true})
	if err != nil {
		// A full store cannot take the check's lock file: that is the one thing allowed to fail.
		if !isErr(err, ErrStoreFull) {
			t.Fatalf("check on a full store: %v", err)
		}
		t.Logf("check could not lock the full store: %v", err)
		return
	}
	if !rep.OK() {
		t.Fatalf("check after store full: %v", rep.Errors)
	}
}

// fullBackend runs out of space after limit bytes, like a full disk, for machines that cannot
// mount a tmpfs.
type fullBackend struct {
	store.Backend
	mu    sync.Mutex
	used  int64
	limit int64
}

func (f *fullBackend) Save(ctx context.Context, h store.Handle, rd io.Reader) error {
	b, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	f.mu.Lock()
	if f.used+int64(len(b)) > f.limit {
		f.mu.Unlock()
		return fmt.Errorf("save %s: %w: %w", h, store.ErrNoSpace, syscall.ENOSPC)
	}
	f.used += int64(len(b))
	f.mu.Unlock()
	return f.Backend.Save(ctx, h, strings.NewReader(string(b)))
}
