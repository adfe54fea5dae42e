package repo

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/store"
)

// TestKilledBackups SIGKILLs a backup process at each fault point and checks the promises of the
// crash-safety order: the repository still checks clean, earlier snapshots load and verify, no
// half snapshot appears, and the next run completes, reusing what was indexed before the kill.
func TestKilledBackups(t *testing.T) {
	points := []struct {
		at         string
		nth        int
		snapshot   bool // the killed run's snapshot exists afterwards
		keepsBlobs bool // the killed run's indexed work is reused by the next run
	}{
		{at: "pack-upload-mid", nth: 3},
		{at: "pack-stream-mid", nth: 3},
		{at: HookPackUpload, nth: 1},
		{at: HookPackUploaded, nth: 1},
		{at: HookIndexSave, nth: 1},
		{at: HookIndexSaved, nth: 1, keepsBlobs: true},
		{at: HookPackUploaded, nth: 4, keepsBlobs: true}, // after the first index file
		{at: HookSnapshotSave, nth: 1, keepsBlobs: true},
		{at: HookSnapshotSaved, nth: 1, snapshot: true, keepsBlobs: true},
	}
	for _, p := range points {
		t.Run(p.at+"-"+strconv.Itoa(p.nth), func(t *testing.T) {
			ctx := context.Background()
			dir := filepath.Join(t.TempDir(), "repo")
			testInit(t, dir)
			first := image{seed: 50, blocks: 24}
			second := image{seed: 51, blocks: 40}
			base := helperJob{Repo: dir, Tmp: t.TempDir()}
			j1 := base
			j1.Seed, j1.Blocks, j1.Source = first.seed, first.blocks, "first"
			res1 := runBackup(t, j1)

			j2 := base
			j2.Seed, j2.Blocks, j2.Source, j2.KillAt, j2.KillNth = second.seed, second.blocks, "second", p.at, p.nth
			runKilled(t, "backup", j2)

			r := testOpen(t, dir, nil)
			rep := mustCheck(t, r, true)
			if want := 1 + btoi(p.snapshot); rep.Snapshots != want {
				t.Fatalf("%d snapshots after the kill, want %d", rep.Snapshots, want)
			}
			s1, _ := ParseID(res1.Snapshot)
			verifyImage(t, r, s1, first)

			j2.KillAt = ""
			res2 := runBackup(t, j2)
			if p.keepsBlobs && res2.Reused == 0 {
				t.Errorf("the run after the kill reused no blobs (new %d)", res2.New)
			}
			if !p.keepsBlobs && res2.New == 0 {
				t.Errorf("the run after the kill stored nothing new: the killed run's unindexed work leaked into the index")
			}
			r2 := testOpen(t, dir, nil)
			s2, _ := ParseID(res2.Snapshot)
			verifyImage(t, r2, s2, second)
			verifyImage(t, r2, s1, first)
			mustCheck(t, r2, true)
			// Prune cleans up after the dead process (its lock is stale: same host, pid gone),
			// including the temp file of a torn upload once it is older than the 2 minutes a
			// starting writer may need to make its lock visible (the clock runs ahead here).
			backdateTempFiles(t, dir, 3*time.Minute)
			prep, err := r2.Prune(ctx, PruneOptions{})
			if err != nil {
				t.Fatalf("prune after the kill: %v", err)
			}
			// A pack being written when the process died is a temp file in the store: torn in
			// Save (spool path), torn while streaming, or whole but not yet named. The tree pack
			// being filled (block maps) may be streaming into a temp file of its own too.
			torn := p.at == "pack-upload-mid" || p.at == "pack-stream-mid" || p.at == HookPackUpload
			if want := btoi(torn); prep.TempFilesRemoved != want && prep.TempFilesRemoved != want+1 {
				t.Errorf("prune removed %d temp files, want %d (or %d with an open tree pack)", prep.TempFilesRemoved, want, want+1)
			}
			verifyImage(t, r2, s2, second)
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestTwoProcessesBackUpAtOnce runs two backup processes into one repository at the same time:
// shared locks coexist, and blocks both write end up stored (possibly twice, never lost).
func TestTwoProcessesBackUpAtOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	testInit(t, dir)
	ims := []image{{seed: 60, blocks: 40}, {seed: 60, blocks: 50}} // the first 40 blocks are shared
	res := make([]helperResult, 2)
	var wg sync.WaitGroup
	for i := range ims {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res[i] = runBackup(t, helperJob{Repo: dir, Seed: ims[i].seed, Blocks: ims[i].blocks,
				Source: "vm" + strconv.Itoa(i), Tmp: t.TempDir()})
		}(i)
	}
	wg.Wait()
	r := testOpen(t, dir, nil)
	for i := range ims {
		id, _ := ParseID(res[i].Snapshot)
		verifyImage(t, r, id, ims[i])
	}
	mustCheck(t, r, true)
	if _, err := r.Prune(context.Background(), PruneOptions{}); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, r, true)
}

// TestPruneVersusProcessLock: prune runs beside another live process's shared lock (backups and
// prune never wait for each other), while rebuild-index, which needs the repository to itself,
// refuses, naming it; once that process is SIGKILLed its lock is stale and rebuild-index proceeds.
func TestPruneVersusProcessLock(t *testing.T) {
	ctx := context.Background()
	dir, r := newRepo(t)
	backupImage(t, r, "vm", image{seed: 70, blocks: 5}, t0)
	cmd, stdin := startLockHolder(t, dir)
	if _, err := r.Prune(ctx, PruneOptions{}); err != nil {
		t.Fatalf("prune beside a process holding a shared lock: %v", err)
	}
	_, err := r.RebuildIndex(ctx)
	var le *LockError
	if !errors.As(err, &le) || le.Holder.PID != cmd.Process.Pid || !strings.Contains(err.Error(), "pid "+strconv.Itoa(cmd.Process.Pid)) {
		t.Fatalf("rebuild-index while a process holds a lock: want a LockError naming pid %d, got %v", cmd.Process.Pid, err)
	}
	// Released normally: prune works.
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("lock holder: %v", err)
	}
	if n := countFiles(t, r.Backend(), store.KindLocks); n != 0 {
		t.Fatalf("%d lock files after the holder exited", n)
	}
	// Killed: its lock stays behind, and is broken because the pid is gone.
	cmd2, _ := startLockHolder(t, dir)
	if _, err := r.RebuildIndex(ctx); !errors.Is(err, ErrLocked) {
		t.Fatalf("rebuild-index while the second holder lives: %v", err)
	}
	cmd2.Process.Signal(syscall.SIGKILL)
	cmd2.Wait()
	if n := countFiles(t, r.Backend(), store.KindLocks); n != 1 {
		t.Fatalf("%d lock files after SIGKILL, want the dead holder's", n)
	}
	if _, err := r.RebuildIndex(ctx); err != nil {
		t.Fatalf("rebuild-index after the holder died: %v", err)
	}
}

// TestKilledPrune SIGKILLs prune while it repacks, after it wrote the new index, and while it
// deletes: every snapshot still verifies, check passes, and the next prune finishes the job.
// The prune-index case once lost data: the second prune repacked the same blobs into packs with
// the same bytes (and so the same names) as the first prune's, then deleted them as duplicates.
func TestKilledPrune(t *testing.T) {
	for _, p := range []struct {
		at  string
		nth int
	}{{HookPackUploaded, 1}, {HookPruneIndex, 1}, {HookPruneDelete, 1}} {
		t.Run(p.at, func(t *testing.T) {
			ctx := context.Background()
			dir := filepath.Join(t.TempDir(), "repo")
			testInit(t, dir)
			// One big pack mixing orphans and used blobs (repacked), plus a forgotten snapshot
			// whose packs are deleted outright.
			w := testOpen(t, dir, func(o *Options) { o.PackSize = 4 << 20; o.Packers = 1 })
			orphan, kept, gone := image{seed: 90, blocks: 20}, image{seed: 91, blocks: 10}, image{seed: 92, blocks: 10}
			for i := 0; i < orphan.blocks; i++ {
				if b := orphan.block(i); b != nil {
					mustSave(t, w, DataBlob, b)
				}
			}
			s := backupImage(t, w, "kept", kept, t0)
			g := backupImage(t, w, "gone", gone, t0)
			if err := w.RemoveSnapshot(ctx, g); err != nil {
				t.Fatal(err)
			}
			killPruneThenFinish(t, dir, p.at, p.nth, func(r *Repository) { verifyImage(t, r, s, kept) },
				orphan.block(1), gone.block(1))
		})
	}
}

// killPruneThenFinish SIGKILLs a prune of dir at the nth time it reaches hook at, then runs a
// whole prune. After each, verify must pass and check must be clean; after the second, none of
// the unused blobs may be left.
func killPruneThenFinish(t *testing.T, dir, at string, nth int, verify func(*Repository), unused ...[]byte) {
	t.Helper()
	j := helperJob{Repo: dir, Tmp: t.TempDir(), KillAt: at, KillNth: nth}
	runKilled(t, "prune", j)
	r := testOpen(t, dir, nil)
	verify(r)
	mustCheck(t, r, true)
	j.KillAt = ""
	var rep PruneReport
	runHelperJSON(t, "prune", j, &rep)
	r2 := testOpen(t, dir, nil)
	verify(r2)
	mustCheck(t, r2, true)
	for _, b := range unused {
		if r2.HasBlob(DataBlob, r2.BlobID(b)) {
			t.Errorf("an unused blob survived the second prune (report %+v)", rep)
		}
	}
}

// backdateTempFiles moves the modification time of every temp file in the repository back by d.
func backdateTempFiles(t *testing.T, dir string, d time.Duration) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasPrefix(e.Name(), store.TempPrefix) {
			when := time.Now().Add(-d)
			if err := os.Chtimes(p, when, when); err != nil {
				t.Fatal(err)
			}
		}
		return err
	})
}
