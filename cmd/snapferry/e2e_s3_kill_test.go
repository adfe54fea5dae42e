package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/snapferry/snapferry/images/disk/disktest"
)

// s3Files counts the objects below repo/KIND/ of an s3:// test repository and sums their
// sizes, counting only objects of at least atLeast bytes.
func s3Files(t *testing.T, r testRepo, kind string, atLeast int64) (n int, bytes int64) {
	t.Helper()
	for o := range r.s3.Client(t).ListObjects(context.Background(), r.bucket, minio.ListObjectsOptions{Prefix: "repo/" + kind + "/", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		if o.Size >= atLeast {
			n++
			bytes += o.Size
		}
	}
	return n, bytes
}

// s3Uploads lists the unfinished multipart uploads in the test repository's bucket.
func s3Uploads(t *testing.T, r testRepo) []minio.ObjectMultipartInfo {
	t.Helper()
	var ups []minio.ObjectMultipartInfo
	for u := range r.s3.Client(t).ListIncompleteUploads(context.Background(), r.bucket, "", true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		ups = append(ups, u)
	}
	return ups
}

// killWhen starts the binary with args (and env added to the environment), waits (deadline 3
// minutes) until ready says the moment has come and SIGKILLs it; the test fails when the process
// ended by itself first.
func killWhen(t *testing.T, home string, env, args []string, ready func() bool) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(append(os.Environ(), "SNAPFERRY_HOME="+home), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(3 * time.Minute)
	for !ready() {
		select {
		case err := <-exited:
			t.Fatalf("snapferry %s ended (%v) before the moment to kill it came\n%s", strings.Join(args, " "), err, stderr.String())
		case <-deadline:
			cmd.Process.Kill()
			<-exited
			t.Fatalf("snapferry %s: the moment to kill it did not come within 3 minutes", strings.Join(args, " "))
		case <-time.After(20 * time.Millisecond): // polling the store for the event
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	err := <-exited
	if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("snapferry %s ended with %v, not by the SIGKILL\n%s", strings.Join(args, " "), err, stderr.String())
	}
}

// checkTempFiles runs check --json and returns the temp files it counted.
func checkTempFiles(t *testing.T, home string, r testRepo) int {
	t.Helper()
	out := mustSF(t, home, 0, r.args("check", "--repo", r.spec, "--json")...).stdout
	var rep struct {
		TempFiles int `json:"temp_files"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("check --json: %v\n%s", err, out)
	}
	return rep.TempFiles
}

// bigImage writes an image of mibs MiB of incompressible data (no two blocks alike).
func bigImage(t *testing.T, path string, mibs int) {
	t.Helper()
	blocks := make([]int64, mibs)
	for i := range blocks {
		blocks[i] = int64(i)
	}
	sparseImage(t, path, int64(mibs)<<20, blocks...)
}

// TestS3KilledMidMultipartUpload: a `snapferry backup` into s3:// is SIGKILLed while its packs
// (24 MiB: multipart uploads of a 16 MiB and an 8 MiB part) are on their way. Nothing shows
// under an unfinished pack's name; check counts the unfinished uploads as temp files; the rerun
// finishes (indexing any complete pack the killed run left: it resends less than 10% of those);
// check --read-data is clean and the image restores byte for byte; and prune aborts the
// unfinished uploads once they predate every live writer (2 minutes, the clock margin). The
// packs upload at once and finish together, so the kill cannot wait for a complete one without
// missing the uploads: TestKilledMidMultipartResumes (transfer/s3store) kills a backup process
// between packs at a chosen part and measures the resume.
func TestS3KilledMidMultipartUpload(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "state")
	s3 := newTestRepo(t, "s3", dir)
	img := filepath.Join(dir, "disk.img")
	bigImage(t, img, 72)
	control := filepath.Join(dir, "control")
	mustSF(t, home, 0, "init", control, "--pack-size", "24M")
	mustSF(t, home, 0, "backup", img, "--to", control)
	_, full := dataBytes(t, control)

	mustSF(t, home, 0, s3.args("init", s3.spec, "--pack-size", "24M")...)
	killWhen(t, home, nil, s3.args("backup", img, "--to", s3.spec, "--bwlimit", "8M"), func() bool {
		return len(s3Uploads(t, s3)) > 0
	})
	ups := s3Uploads(t, s3)
	if len(ups) == 0 {
		t.Fatal("no unfinished upload after the kill")
	}
	cl := s3.s3.Client(t)
	for _, u := range ups {
		if _, err := cl.StatObject(context.Background(), s3.bucket, u.Key, minio.StatObjectOptions{}); err == nil {
			t.Fatalf("%s is visible while its upload never finished", u.Key)
		}
	}
	if n, _ := s3Files(t, s3, "index", 0); n != 0 {
		t.Fatalf("%d index files before the rerun: the kill came too late", n)
	}
	if got := checkTempFiles(t, home, s3); got != len(ups) {
		t.Fatalf("check counted %d temp files, want the %d unfinished uploads", got, len(ups))
	}
	_, stored := s3Files(t, s3, "data", 0)
	mustSF(t, home, 0, s3.args("backup", img, "--to", s3.spec)...)
	_, after := s3Files(t, s3, "data", 0)
	sent := after - stored
	resent := stored + sent - full
	t.Logf("killed with %d unfinished uploads and %d bytes in complete packs; rerun sent %d; complete backup %d: resent %d",
		len(ups), stored, sent, full, resent)
	if stored > 0 && resent*10 >= stored {
		t.Fatalf("the rerun sent %d of the %d bytes the killed run had stored again (limit 10%%)", resent, stored)
	}
	mustSF(t, home, 0, s3.args("check", "--repo", s3.spec, "--read-data")...)
	restoreImage(t, home, s3, img, filepath.Join(dir, "out"), disktest.FileSum(t, img))

	// Nobody writes now: prune aborts the uploads once they are older than the clock margin.
	deadline := time.Now().Add(4 * time.Minute)
	for len(s3Uploads(t, s3)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("prune left %d unfinished uploads for 4 minutes", len(s3Uploads(t, s3)))
		}
		mustSF(t, home, 0, s3.args("prune", "--repo", s3.spec)...)
	}
	if got := checkTempFiles(t, home, s3); got != 0 {
		t.Fatalf("check counts %d temp files after prune aborted the uploads", got)
	}
}

// TestS3KilledCopy: `copy` from a local repository into s3:// is SIGKILLed after it stored two
// packs and before any index file; the rerun indexes them (resume, as backups do), sends less
// than 10% of them again, and the copy checks clean and restores byte for byte.
func TestS3KilledCopy(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "state")
	img := filepath.Join(dir, "disk.img")
	bigImage(t, img, 64)
	src := filepath.Join(dir, "src")
	mustSF(t, home, 0, "init", src, "--pack-size", "8M")
	mustSF(t, home, 0, "backup", img, "--to", src)
	_, full := dataBytes(t, src)

	s3 := newTestRepo(t, "s3", dir)
	mustSF(t, home, 0, s3.args("init", s3.spec, "--pack-size", "8M")...)
	killWhen(t, home, nil, s3.args("copy", "--from", src, "--to", s3.spec, "--bwlimit", "8M"), func() bool {
		n, _ := s3Files(t, s3, "data", 4<<20)
		return n >= 2
	})
	if n, _ := s3Files(t, s3, "index", 0); n != 0 {
		t.Fatalf("%d index files before the rerun: the kill came too late to test resuming", n)
	}
	if n, _ := s3Files(t, s3, "snapshots", 0); n != 0 {
		t.Fatalf("the killed copy left %d snapshots", n)
	}
	_, stored := s3Files(t, s3, "data", 0)
	r := mustSF(t, home, 0, s3.args("copy", "--from", src, "--to", s3.spec)...)
	if !strings.Contains(r.stderr, "resumed: indexed") {
		t.Fatalf("the rerun of copy did not resume:\n%s%s", r.stdout, r.stderr)
	}
	_, after := s3Files(t, s3, "data", 0)
	sent := after - stored
	resent := stored + sent - full
	t.Logf("killed copy stored %d bytes; rerun sent %d; the source holds %d: resent %d", stored, sent, full, resent)
	if resent*10 >= stored {
		t.Fatalf("the rerun sent %d of the %d bytes the killed copy had stored again (limit 10%%)", resent, stored)
	}
	mustSF(t, home, 0, s3.args("check", "--repo", s3.spec, "--read-data")...)
	restoreImage(t, home, s3, img, filepath.Join(dir, "out"), disktest.FileSum(t, img))
}
