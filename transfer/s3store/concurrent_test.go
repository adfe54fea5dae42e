package s3store_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/tree"
	"github.com/snapferry/snapferry/transfer/s3store"
	"github.com/snapferry/snapferry/transfer/s3store/rgwtest"
)

const helperEnv = "SNAPFERRY_S3_BACKUP_HELPER"

// runBackupHelper is one backup process: it opens the s3:// repository named in its
// environment, takes a shared lock as `snapferry backup` does, backs up its folder and prints
// the snapshot id.
func runBackupHelper() error {
	ctx := context.Background()
	r, done, err := openHelperRepo(ctx, repo.Options{})
	if err != nil {
		return err
	}
	defer done()
	lk, err := r.Lock(ctx, false)
	if err != nil {
		return err
	}
	defer lk.Unlock(ctx)
	if os.Getenv("H_ADOPT") != "" { // what `snapferry backup` does after taking its lock
		if ad, err := r.AdoptUnindexed(ctx); err != nil {
			return err
		} else {
			fmt.Fprintf(os.Stderr, "adopted %d packs\n", ad.Packs)
		}
	}
	id, err := tryBackupFolder(ctx, r, os.Getenv("H_DIR"), os.Getenv("H_HOST"), tree.Options{})
	if err != nil {
		return err
	}
	fmt.Println(id)
	return nil
}

// openHelperRepo opens, in a helper process, the s3:// repository its environment names (parts
// of 5 MiB, so test packs are multipart uploads; with H_KILL_IN_PART the process dies by SIGKILL
// when it starts sending that part of an upload once H_KILL_AFTER_COMPLETE uploads, default
// none, have completed: no abort runs). done closes it and removes its temp folder.
func openHelperRepo(ctx context.Context, o repo.Options) (r *repo.Repository, done func(), err error) {
	so := s3store.Options{Endpoint: os.Getenv("H_ENDPOINT"), Bucket: os.Getenv("H_BUCKET"), Prefix: "repo",
		InsecureHTTP: true, PartSize: 5 << 20}
	if os.Getenv("H_KILL_IN_PART") != "" {
		after, _ := strconv.Atoi(os.Getenv("H_KILL_AFTER_COMPLETE"))
		so.Transport = &killingTransport{rt: http.DefaultTransport, part: os.Getenv("H_KILL_IN_PART"), after: int32(after)}
	}
	be, err := s3store.New(so)
	if err != nil {
		return nil, nil, err
	}
	tmp, err := os.MkdirTemp("", "s3-helper-")
	if err != nil {
		return nil, nil, err
	}
	o.TempDir, o.Hostname = tmp, os.Getenv("H_HOST")
	if r, err = repo.Open(ctx, be, o); err != nil {
		os.RemoveAll(tmp)
		return nil, nil, err
	}
	return r, func() { r.Close(); os.RemoveAll(tmp) }, nil
}

// TestConcurrentBackups: eight processes back up into one s3:// repository at the same moment
// (shared locks, no exclusive one); afterwards check --read-data is clean and every snapshot
// restores byte for byte. Their folders share files, so they race to store the same blobs.
// (No prune runs alongside: prune that never blocks backups is another change, issue 17 item 3.)
func TestConcurrentBackups(t *testing.T) {
	srv := rgwtest.Get(t)
	srv.SetEnv(t)
	s := newStore(t, srv, s3store.Options{})
	initRepo(t, s, "")
	const writers = 8
	dirs := make([]string, writers)
	for i := range dirs {
		dirs[i] = makeFolder(t, i+1)
	}
	ids := make([]string, writers)
	var wg sync.WaitGroup
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			out, err := runBackupProcess(t, srv, s, dirs[i], fmt.Sprintf("host-%d", i))
			if err != nil {
				t.Errorf("backup process %d: %v\n%s", i, err, stderr(err))
				return
			}
			ids[i] = out
		}(i)
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	r := openRepo(t, s, "")
	rep := mustCheck(t, r)
	if rep.Snapshots != writers {
		t.Fatalf("%d snapshots, want %d", rep.Snapshots, writers)
	}
	for i, id := range ids {
		sid, err := repo.ParseID(id)
		if err != nil {
			t.Fatalf("process %d printed %q", i, id)
		}
		assertRestores(t, r, sid, dirs[i])
	}
}

// killingTransport kills the process when a request for the given part number starts after at
// least `after` multipart uploads have completed.
type killingTransport struct {
	rt        http.RoundTripper
	part      string
	after     int32
	completed atomic.Int32
}

func (k *killingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	q := req.URL.Query()
	if req.Method == http.MethodPut && q.Get("partNumber") == k.part && k.completed.Load() >= k.after {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	resp, err := k.rt.RoundTrip(req)
	if err == nil && req.Method == http.MethodPost && q.Has("uploadId") && resp.StatusCode == http.StatusOK {
		k.completed.Add(1) // CompleteMultipartUpload answered
	}
	return resp, err
}

// runBackupProcess runs one backup helper for dir into s and returns its output and error.
func runBackupProcess(t *testing.T, srv rgwtest.Server, s *s3store.Store, dir, host string, env ...string) (string, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), helperEnv+"=1", "H_ENDPOINT="+srv.Endpoint, "H_BUCKET="+s.Bucket(),
		"H_DIR="+dir, "H_HOST="+host, "TMPDIR="+t.TempDir()), env...)
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

// TestKilledMidMultipart: a backup SIGKILLed while uploading the second part of a pack leaves no
// pack under its name, only an unfinished upload; the repository checks clean, the rerun
// finishes and restores, check counts the orphaned upload and CleanTemp (prune's) aborts it.
func TestKilledMidMultipart(t *testing.T) {
	srv := rgwtest.Get(t)
	srv.SetEnv(t)
	s := newStore(t, srv, s3store.Options{})
	initRepo(t, s, "")
	dir := makeFolder(t, 1)
	// Enough data for packs of the repository's 6 MiB: two parts of 5 MiB at most each.
	if err := os.WriteFile(filepath.Join(dir, "big"), dataOf(77, 16<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := runBackupProcess(t, srv, s, dir, "host-a", "H_KILL_IN_PART=2")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper: %v, want death by SIGKILL", err)
	}
	uploads := 0
	for u := range s.Client().ListIncompleteUploads(context.Background(), s.Bucket(), "", true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		uploads++
	}
	if uploads == 0 {
		t.Fatal("no unfinished upload after the kill: the helper did not die inside a multipart upload")
	}
	r := openRepo(t, s, "")
	if rep := mustCheck(t, r); rep.Snapshots != 0 {
		t.Fatalf("%d snapshots after the killed run", rep.Snapshots)
	}
	out, err := runBackupProcess(t, srv, s, dir, "host-a")
	if err != nil {
		t.Fatalf("rerun: %v\n%s", err, stderr(err))
	}
	sid, err := repo.ParseID(out)
	if err != nil {
		t.Fatalf("rerun printed %q", out)
	}
	r = openRepo(t, s, "")
	mustCheck(t, r)
	assertRestores(t, r, sid, dir)
	// Check counts the orphaned upload as a temp file; a time after it started (what prune passes
	// once no live writer predates it) aborts it.
	if rep, err := r.Check(context.Background(), repo.CheckOptions{}); err != nil {
		t.Fatal(err)
	} else if rep.TempFiles != uploads {
		t.Errorf("check: %d temp files, want the %d unfinished uploads", rep.TempFiles, uploads)
	}
	if rep, err := s.CleanTemp(context.Background(), time.Now().Add(time.Minute)); err != nil || rep.Removed != uploads {
		t.Errorf("CleanTemp: %+v, %v; want %d aborted", rep, err, uploads)
	}
	assertNoUploads(t, s)
}

func stderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
