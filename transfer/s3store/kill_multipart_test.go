package s3store_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/transfer/s3store"
	"github.com/snapferry/snapferry/transfer/s3store/rgwtest"
)

// dataBytes sums the sizes of the packs (objects below repo/data/) in s's bucket.
func dataBytes(t *testing.T, s *s3store.Store) int64 {
	t.Helper()
	var n int64
	for o := range s.Client().ListObjects(context.Background(), s.Bucket(), minio.ListObjectsOptions{Prefix: "repo/data/", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		n += o.Size
	}
	return n
}

// TestKilledMidMultipartResumes: a backup process is SIGKILLed as a pack starts sending its
// second part after two packs completed: some packs are complete, at least one is a multipart
// upload in flight. Nothing is visible under the third pack's name; check counts the
// unfinished upload; the rerun adopts the complete packs (as `snapferry backup` does after taking
// its lock) and sends less than 10% of what the killed run had stored again, compared with a
// complete backup of the same folder; check --read-data is clean, the snapshot restores byte for
// byte, and CleanTemp (prune's) aborts the orphaned upload.
func TestKilledMidMultipartResumes(t *testing.T) {
	srv := rgwtest.Get(t)
	srv.SetEnv(t)
	dir := t.TempDir()
	// 42 MiB of incompressible data: seven packs of the repository's 6 MiB, each a multipart
	// upload of a 5 MiB and a 1 MiB part; at most four are uploaded at once.
	if err := os.WriteFile(filepath.Join(dir, "big"), dataOf(78, 42<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	control := newStore(t, srv, s3store.Options{})
	initRepo(t, control, "")
	if _, err := runBackupProcess(t, srv, control, dir, "host-a"); err != nil {
		t.Fatalf("complete backup: %v\n%s", err, stderr(err))
	}
	full := dataBytes(t, control)

	s := newStore(t, srv, s3store.Options{})
	initRepo(t, s, "")
	_, err := runBackupProcess(t, srv, s, dir, "host-a", "H_KILL_IN_PART=2", "H_KILL_AFTER_COMPLETE=2")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper: %v, want death by SIGKILL", err)
	}
	ctx := context.Background()
	var ups []minio.ObjectMultipartInfo
	for u := range s.Client().ListIncompleteUploads(ctx, s.Bucket(), "", true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		ups = append(ups, u)
		if _, err := s.Client().StatObject(ctx, s.Bucket(), u.Key, minio.StatObjectOptions{}); err == nil {
			t.Errorf("%s is visible while its upload never finished", u.Key)
		}
	}
	stored := dataBytes(t, s)
	if len(ups) == 0 || stored == 0 {
		t.Fatalf("after the kill: %d unfinished uploads, %d bytes in complete packs; want both", len(ups), stored)
	}
	r := openRepo(t, s, "")
	if rep, err := r.Check(ctx, repo.CheckOptions{}); err != nil {
		t.Fatal(err)
	} else if rep.TempFiles != len(ups) || rep.Snapshots != 0 {
		t.Fatalf("check after the kill: %d temp files, %d snapshots; want the %d unfinished uploads and none", rep.TempFiles, rep.Snapshots, len(ups))
	}

	out, err := runBackupProcess(t, srv, s, dir, "host-a", "H_ADOPT=1")
	if err != nil {
		t.Fatalf("rerun: %v\n%s", err, stderr(err))
	}
	sent := dataBytes(t, s) - stored
	resent := stored + sent - full
	t.Logf("killed run: %d bytes in complete packs, %d unfinished uploads; rerun sent %d; complete backup %d: resent %d",
		stored, len(ups), sent, full, resent)
	if resent*10 >= stored {
		t.Fatalf("the rerun sent %d of the %d bytes the killed run had stored again (limit 10%%)", resent, stored)
	}
	sid, err := repo.ParseID(out)
	if err != nil {
		t.Fatalf("rerun printed %q", out)
	}
	r = openRepo(t, s, "")
	mustCheck(t, r)
	assertRestores(t, r, sid, dir)
	if rep, err := s.CleanTemp(ctx, time.Now().Add(time.Minute)); err != nil || rep.Removed != len(ups) {
		t.Errorf("CleanTemp: %+v, %v; want the %d orphaned uploads aborted", rep, err, len(ups))
	}
	assertNoUploads(t, s)
}
