package diskfiles

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/snapferry/snapferry/images/disk"
	"github.com/snapferry/snapferry/images/disk/memblobs"
	"github.com/snapferry/snapferry/images/repo"
)

// backedUpExt4 makes a bare ext4 image with mke2fs -d from a small tree (a sparse file, a
// symlink, a nested folder) and backs it up into an in-memory store.
func backedUpExt4(t *testing.T) (*memblobs.Store, *repo.Snapshot) {
	t.Helper()
	if _, err := exec.LookPath("mke2fs"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("mke2fs is missing (CI installs e2fsprogs)")
		}
		t.Skip("mke2fs not installed")
	}
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "etc/app"), 0o750)
	os.WriteFile(filepath.Join(src, "etc/app/app.conf"), []byte("port = 8080\n"), 0o600)
	f, _ := os.Create(filepath.Join(src, "etc/app/sparse.db"))
	f.WriteAt([]byte("end"), 8<<20)
	f.Close()
	os.Symlink("app.conf", filepath.Join(src, "etc/app/current"))
	os.Link(filepath.Join(src, "etc/app/app.conf"), filepath.Join(src, "etc/app/app.conf.link"))
	img := filepath.Join(t.TempDir(), "disk.img")
	os.WriteFile(img, nil, 0o644)
	os.Truncate(img, 32<<20)
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-d", src, img).CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	st := memblobs.New(1 << 20)
	d, _, err := disk.Backup(context.Background(), st, img, disk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d.Path = img
	return st, &repo.Snapshot{Disks: []repo.Disk{d}}
}

func TestRestoreFolderTwiceAndOverwrite(t *testing.T) {
	st, sn := backedUpExt4(t)
	d, rest, ok := Match(sn, "disk.img/p0/etc/app")
	if !ok || rest != "p0/etc/app" {
		t.Fatalf("Match: %v %q", ok, rest)
	}
	tg, err := Open(context.Background(), st, d, rest)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	res, err := Restore(tg, out, false)
	if err != nil || res.Files != 2 || res.HardLinks != 1 || res.Symlinks != 1 || res.Dirs != 1 {
		t.Fatalf("first restore: %+v %v", res, err)
	}
	a, _ := os.Stat(filepath.Join(out, "app/app.conf"))
	b, _ := os.Stat(filepath.Join(out, "app/app.conf.link"))
	if !os.SameFile(a, b) {
		t.Error("the two names of one guest file came back as two files")
	}
	fi, _ := os.Stat(filepath.Join(out, "app/app.conf"))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("app.conf mode %v", fi.Mode())
	}
	di, _ := os.Stat(filepath.Join(out, "app"))
	if di.Mode().Perm() != 0o750 {
		t.Errorf("folder mode %v", di.Mode())
	}
	var sst syscall.Stat_t
	syscall.Stat(filepath.Join(out, "app/sparse.db"), &sst)
	if sst.Size != 8<<20+3 || sst.Blocks*512 > 1<<20 {
		t.Errorf("sparse.db: %d bytes in %d blocks: not sparse", sst.Size, sst.Blocks)
	}
	// Again: everything is there and identical, so nothing is written and nothing refused.
	res, err = Restore(tg, out, false)
	if err != nil || res.Unchanged != 4 || res.Files != 0 {
		t.Fatalf("second restore: %+v %v", res, err)
	}
	// A changed local file is refused without overwrite and left as it was.
	os.WriteFile(filepath.Join(out, "app/app.conf"), []byte("mine"), 0o600)
	if _, err := Restore(tg, out, false); !errors.Is(err, ErrExists) {
		t.Fatalf("restore over a changed file: %v, want ErrExists", err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "app/app.conf")); string(b) != "mine" {
		t.Fatal("changed file replaced without overwrite")
	}
	if _, err := Restore(tg, out, true); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "app/app.conf")); string(b) != "port = 8080\n" {
		t.Fatalf("overwrite did not restore: %q", b)
	}
	if left, _ := filepath.Glob(filepath.Join(out, "app/.snapferry-*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestSafeName(t *testing.T) {
	for _, n := range []string{"", ".", "..", "a/b", "x\x00"} {
		if safeName(n) == nil {
			t.Errorf("safeName(%q) accepted", n)
		}
	}
	if safeName("Übersicht [1].txt") != nil {
		t.Error("a normal name refused")
	}
}
