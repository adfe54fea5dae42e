package s3store_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/tree"
	"github.com/snapferry/snapferry/transfer/s3store"
	"github.com/snapferry/snapferry/transfer/s3store/rgwtest"
)

// runPruneHelper is the prune process of TestKilledPrune: it prunes the s3:// repository named in
// its environment and dies by SIGKILL the H_KILL_NTH time it reaches the hook point H_KILL_AT.
func runPruneHelper() error {
	ctx := context.Background()
	nth, _ := strconv.Atoi(os.Getenv("H_KILL_NTH"))
	seen := 0
	die := func(point string) {
		if point == os.Getenv("H_KILL_AT") {
			if seen++; seen == nth {
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {}
			}
		}
	}
	r, done, err := openHelperRepo(ctx, repo.Options{Hook: die})
	if err != nil {
		return err
	}
	defer done()
	rep, err := r.Prune(ctx, repo.PruneOptions{})
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(rep)
}

// TestKilledPrune: a prune of an s3:// repository is SIGKILLed while it repacks (after its first
// new pack is stored), after it wrote its new index (old index files still there) and while it
// deletes. After each kill check --read-data is clean and the snapshot that stays restores byte
// for byte; a second prune finishes, leaves a clean repository, and no unfinished upload is left
// once the killed prune's uploads predate every writer (CleanTemp, as prune calls it).
// Packs are 6 MiB and parts 5 MiB, so the repacked packs are multipart uploads.
func TestKilledPrune(t *testing.T) {
	srv := rgwtest.Get(t)
	srv.SetEnv(t)
	for _, p := range []struct {
		at  string
		nth int
	}{{repo.HookPackUploaded, 1}, {repo.HookPruneIndex, 1}, {repo.HookPruneDelete, 1}} {
		t.Run(p.at, func(t *testing.T) {
			ctx := context.Background()
			s := newStore(t, srv, s3store.Options{})
			initRepo(t, s, "")
			gone, kept := makeFolder(t, 1), makeFolder(t, 2)
			r := openRepo(t, s, "")
			// The forgotten snapshot's packs hold blobs the kept one shares: they are repacked.
			// One worker, so one pack fills at a time: with several, a busy machine could put
			// the forgotten snapshot's own blobs in a pack of their own and the shared ones in a
			// pack under the repack threshold, and prune would delete and keep, never repack
			// (it did so once in a -count=2 run of every package at once).
			one := tree.Options{Workers: 1}
			g := backupFolderWith(t, r, gone, "test", one)
			k := backupFolderWith(t, r, kept, "test", one)
			if err := r.RemoveSnapshot(ctx, g); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"=1", "H_MODE=prune", "H_ENDPOINT="+srv.Endpoint, "H_BUCKET="+s.Bucket(),
				"H_HOST=test", "H_KILL_AT="+p.at, "H_KILL_NTH="+strconv.Itoa(p.nth), "TMPDIR="+t.TempDir())
			_, err := cmd.Output()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("prune helper: %v, want death by SIGKILL at %s\n%s", err, p.at, stderr(err))
			}
			r = openRepo(t, s, "")
			mustCheck(t, r)
			assertRestores(t, r, k, kept)
			rep, err := r.Prune(ctx, repo.PruneOptions{})
			if err != nil {
				t.Fatalf("prune after the killed one: %v", err)
			}
			t.Logf("killed at %s; the next prune: %+v", p.at, *rep)
			r = openRepo(t, s, "")
			if c := mustCheck(t, r); c.Snapshots != 1 {
				t.Fatalf("%d snapshots after the prunes, want 1", c.Snapshots)
			}
			assertRestores(t, r, k, kept)
			if _, err := s.CleanTemp(ctx, time.Now().Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			assertNoUploads(t, s)
		})
	}
}
