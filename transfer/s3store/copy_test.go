package s3store_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/store/local"
	"github.com/snapferry/snapferry/transfer/s3store"
	"github.com/snapferry/snapferry/transfer/s3store/rgwtest"
)

// TestCopyThroughS3: a local repository is copied off-site to an encrypted one on RGW and back
// into a plain local one (local->s3, s3->local, encrypted->plain); each copy restores byte for
// byte and checks clean, and a second copy sends nothing.
func TestCopyThroughS3(t *testing.T) {
	srv := rgwtest.Get(t)
	ctx := context.Background()
	folder := makeFolder(t, 1)

	localBe := local.New(filepath.Join(t.TempDir(), "local"))
	initRepo(t, localBe, "")
	first := openRepo(t, localBe, "")
	backupFolder(t, first, folder, "host-a")

	s3be := newStore(t, srv, s3store.Options{})
	initRepo(t, s3be, "off-site secret")
	offsite := openRepo(t, s3be, "off-site secret")
	rep, err := repo.Copy(ctx, first, offsite, repo.CopyOptions{})
	if err != nil || rep.Snapshots != 1 || !rep.Reencoded {
		t.Fatalf("copy local -> s3: %+v, %v", rep, err)
	}
	offsite = openRepo(t, s3be, "off-site secret")
	mustCheck(t, offsite)
	copied, err := offsite.FindSnapshot(ctx, "latest", repo.SnapshotFilter{})
	if err != nil {
		t.Fatal(err)
	}
	assertRestores(t, offsite, copied.ID, folder)

	back := local.New(filepath.Join(t.TempDir(), "back"))
	initRepo(t, back, "")
	home := openRepo(t, back, "")
	if rep, err := repo.Copy(ctx, offsite, home, repo.CopyOptions{}); err != nil || rep.Snapshots != 1 {
		t.Fatalf("copy s3 -> local: %+v, %v", rep, err)
	}
	home = openRepo(t, back, "")
	mustCheck(t, home)
	again, err := home.FindSnapshot(ctx, "latest", repo.SnapshotFilter{})
	if err != nil {
		t.Fatal(err)
	}
	assertRestores(t, home, again.ID, folder)
	if rep, err := repo.Copy(ctx, first, offsite, repo.CopyOptions{}); err != nil || rep.BlobsSent != 0 || rep.Existing != 1 {
		t.Errorf("second copy local -> s3: %+v, %v; want nothing sent", rep, err)
	}
}
