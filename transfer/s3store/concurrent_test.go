package s3store_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/transfer/s3store"
	"github.com/snapferry/snapferry/transfer/s3store/rgwtest"
)

const helperEnv = "SNAPFERRY_S3_BACKUP_HELPER"

// runBackupHelper is one backup process: it opens the s3:// repository named in its
// environment, takes a shared lock as `snapferry backup` does, backs up its folder and prints
// the snapshot id.
func runBackupHelper() error {
	ctx := context.Background()
	be, err := s3store.New(s3store.Options{Endpoint: os.Getenv("H_ENDPOINT"), Bucket: os.Getenv("H_BUCKET"),
		Prefix: "repo", InsecureHTTP: true})
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "s3-helper-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	r, err := repo.Open(ctx, be, repo.Options{TempDir: tmp, Hostname: os.Getenv("H_HOST")})
	if err != nil {
		return err
	}
	defer r.Close()
	lk, err := r.Lock(ctx, false)
	if err != nil {
		return err
	}
	defer lk.Unlock(ctx)
	id, err := tryBackupFolder(ctx, r, os.Getenv("H_DIR"), os.Getenv("H_HOST"))
	if err != nil {
		return err
	}
	fmt.Println(id)
	return nil
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
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"=1", "H_ENDPOINT="+srv.Endpoint, "H_BUCKET="+s.Bucket(),
				"H_DIR="+dirs[i], fmt.Sprintf("H_HOST=host-%d", i), "TMPDIR="+t.TempDir())
			out, err := cmd.Output()
			if err != nil {
				t.Errorf("backup process %d: %v\n%s", i, err, stderr(err))
				return
			}
			ids[i] = strings.TrimSpace(string(out))
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

func stderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
