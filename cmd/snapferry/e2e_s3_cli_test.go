package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/snapferry/snapferry/images/disk/disktest"
)

// TestS3RepositoryCLI runs the binary against a real S3 server (Ceph RGW) the way a user does:
// init, backups of an image and of a folder, snapshots, ls, restores compared byte for byte,
// check --read-data, forget --prune, and copy from the bucket to a local repository and from
// there into a second bucket, each copy restored again.
func TestS3RepositoryCLI(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "state")
	s3 := newTestRepo(t, "s3", dir)
	img := filepath.Join(dir, "disk.img")
	sparseImage(t, img, 24<<20, 0, 1, 5, 20)
	folder := filepath.Join(dir, "etc")
	writeTree(t, folder, map[string]string{"hosts": "127.0.0.1 localhost\n", "app/conf.ini": "[a]\nx=1\n",
		"app/big.bin": strings.Repeat("snapferry ", 200_000)})

	mustSF(t, home, 0, s3.args("init", s3.spec)...)
	mustSF(t, home, 0, s3.args("backup", img, folder, "--to", s3.spec)...)
	list := mustSF(t, home, 0, s3.args("snapshots", "--repo", s3.spec)...).stdout
	if !strings.Contains(list, img) || !strings.Contains(list, folder) {
		t.Fatalf("snapshots lacks a source:\n%s", list)
	}
	ls := mustSF(t, home, 0, s3.args("ls", "latest:"+folder+"/app", "--source", folder, "--repo", s3.spec)...).stdout
	if !strings.Contains(ls, "conf.ini") || !strings.Contains(ls, "big.bin") {
		t.Fatalf("ls of the folder snapshot:\n%s", ls)
	}
	first := disktest.FileSum(t, img)
	restoreImage(t, home, s3, img, filepath.Join(dir, "out1"), first)
	restoreFolder(t, home, s3, folder, filepath.Join(dir, "out2"))
	mustSF(t, home, 0, s3.args("check", "--repo", s3.spec, "--read-data")...)

	// A second version; forget --prune keeps only it and frees the first one's own block.
	f, _ := os.OpenFile(img, os.O_RDWR, 0)
	writeRandom(t, f, 7)
	f.Close()
	second := disktest.FileSum(t, img)
	mustSF(t, home, 0, s3.args("backup", img, "--to", s3.spec)...)
	mustSF(t, home, 0, s3.args("forget", "--repo", s3.spec, "--keep-last", "1", "--source", img, "--prune")...)
	images := 0
	for _, s := range listSnapshots(t, home, s3) {
		if s.Snapshot.Source == img {
			images++
		}
	}
	if images != 1 {
		t.Fatalf("%d snapshots of the image after forget --keep-last 1, want 1", images)
	}
	mustSF(t, home, 0, s3.args("check", "--repo", s3.spec, "--read-data")...)
	restoreImage(t, home, s3, img, filepath.Join(dir, "out3"), second)

	// s3 -> local -> another bucket: every copy restores and checks clean.
	local := filepath.Join(dir, "local")
	mustSF(t, home, 0, "init", local)
	mustSF(t, home, 0, s3.args("copy", "--from", s3.spec, "--to", local)...)
	mustSF(t, home, 0, "check", "--repo", local, "--read-data")
	restoreImage(t, home, testRepo{spec: local}, img, filepath.Join(dir, "out4"), second)
	restoreFolder(t, home, testRepo{spec: local}, folder, filepath.Join(dir, "out5"))
	other := newTestRepo(t, "s3", filepath.Join(dir, "other"))
	mustSF(t, home, 0, other.args("init", other.spec)...)
	mustSF(t, home, 0, other.args("copy", "--from", local, "--to", other.spec)...)
	again := mustSF(t, home, 0, other.args("copy", "--from", local, "--to", other.spec, "--json")...).stdout
	if !strings.Contains(again, `"blobs_sent": 0`) && !strings.Contains(again, `"blobs_sent":0`) {
		t.Errorf("a second copy local -> s3 sent blobs again:\n%s", again)
	}
	mustSF(t, home, 0, other.args("check", "--repo", other.spec, "--read-data")...)
	restoreImage(t, home, other, img, filepath.Join(dir, "out6"), second)
	restoreFolder(t, home, other, folder, filepath.Join(dir, "out7"))
}

// TestS3ObjectLockCLI: on a bucket made by init --s3-object-lock, forget --prune removes a
// snapshot and its data from the repository's view, but the server keeps every version (deleting
// one by its version id is refused), undelete brings the snapshot back, check --read-data is clean
// and the snapshot restores byte for byte; retain renews what young snapshots need.
func TestS3ObjectLockCLI(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "state")
	s3 := newTestRepo(t, "s3", dir)
	img := filepath.Join(dir, "disk.img")
	sparseImage(t, img, 8<<20, 0, 3)
	mustSF(t, home, 0, s3.args("init", s3.spec, "--s3-object-lock", "1d")...)
	mustSF(t, home, 0, s3.args("backup", img, "--to", s3.spec)...)
	first := disktest.FileSum(t, img)
	old := listSnapshots(t, home, s3)
	f, _ := os.OpenFile(img, os.O_RDWR, 0)
	writeRandom(t, f, 5)
	f.Close()
	mustSF(t, home, 0, s3.args("backup", img, "--to", s3.spec)...)
	deletedAt := time.Now().Add(-time.Second)
	mustSF(t, home, 0, s3.args("forget", "--repo", s3.spec, "--keep-last", "1", "--source", img, "--prune")...)
	for _, s := range old {
		if s.Snapshot.Source != img {
			continue
		}
		r := sf(t, home, s3.args("restore", s.ID, "--from", s3.spec, "--target", filepath.Join(dir, "gone"))...)
		if r.code == 0 {
			t.Fatalf("the forgotten snapshot %s still restores before undelete", s.ID)
		}
	}
	// The thief's way: delete versions by id. The server refuses every one.
	cl := s3.s3.Client(t)
	ctx := context.Background()
	refused := 0
	for v := range cl.ListObjects(ctx, s3.bucket, minio.ListObjectsOptions{Prefix: "repo/", Recursive: true, WithVersions: true}) {
		if v.Err != nil {
			t.Fatal(v.Err)
		}
		if v.IsDeleteMarker {
			continue
		}
		if err := cl.RemoveObject(ctx, s3.bucket, v.Key, minio.RemoveObjectOptions{VersionID: v.VersionID}); err == nil {
			t.Fatalf("deleting version %s of %s succeeded on an Object Lock bucket", v.VersionID, v.Key)
		}
		refused++
		if refused >= 5 {
			break
		}
	}
	if refused == 0 {
		t.Fatal("no object versions in the bucket")
	}
	mustSF(t, home, 0, s3.args("undelete", "--repo", s3.spec, "--since", deletedAt.UTC().Format(time.RFC3339))...)
	mustSF(t, home, 0, s3.args("check", "--repo", s3.spec, "--read-data")...)
	for _, s := range old {
		if s.Snapshot.Source != img {
			continue
		}
		out := filepath.Join(dir, "back")
		mustSF(t, home, 0, s3.args("restore", s.ID, "--from", s3.spec, "--target", out)...)
		if disktest.FileSum(t, filepath.Join(out, filepath.Base(img))) != first {
			t.Fatal("the undeleted snapshot restores other bytes")
		}
	}
	mustSF(t, home, 0, s3.args("retain", "--repo", s3.spec)...)
}

// restoreImage restores the latest snapshot of img from repo and compares it with want.
func restoreImage(t *testing.T, home string, repo testRepo, img, out, want string) {
	t.Helper()
	mustSF(t, home, 0, repo.args("restore", "latest", "--source", img, "--from", repo.spec, "--target", out)...)
	if disktest.FileSum(t, filepath.Join(out, filepath.Base(img))) != want {
		t.Fatalf("the image restored from %s differs from what was backed up", repo.spec)
	}
}

// restoreFolder restores the latest snapshot of folder from repo and compares every file.
func restoreFolder(t *testing.T, home string, repo testRepo, folder, out string) {
	t.Helper()
	mustSF(t, home, 0, repo.args("restore", "latest", "--source", folder, "--from", repo.spec, "--target", out)...)
	n := 0
	filepath.Walk(folder, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		want, _ := os.ReadFile(p)
		got, err := os.ReadFile(filepath.Join(out, p))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s restored from %s differs: %v", p, repo.spec, err)
		}
		n++
		return nil
	})
	if n == 0 {
		t.Fatalf("no files compared below %s", folder)
	}
}

// writeTree writes files (slash paths below dir) with the given contents.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
