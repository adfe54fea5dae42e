package tree

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/images/repo"
)

func TestExcludeLeavesEntriesOut(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "keep.txt"), []byte("k"), 0o644)
	writeFile(t, filepath.Join(dir, "cache/big.bin"), memblobs.RandBytes(1, 1<<20), 0o644)
	writeFile(t, filepath.Join(dir, "sub/drop.tmp"), []byte("t"), 0o644)
	bs := memblobs.New(1 << 20)
	res, err := Backup(ctx, bs, []string{dir}, Options{Exclude: func(p string, n *repo.Node) bool {
		return strings.HasSuffix(p, ".tmp") || (n.Type == repo.NodeDir && filepath.Base(p) == "cache")
	}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	must(t, List(ctx, bs, res.Root, func(p string, n *repo.Node) error {
		if strings.HasPrefix(p, dir+"/") {
			got = append(got, strings.TrimPrefix(p, dir+"/"))
		}
		return nil
	}))
	if strings.Join(got, " ") != "keep.txt sub" {
		t.Fatalf("snapshot holds %v", got)
	}
	if res.Stats.BytesRead != 1 {
		t.Fatalf("read %d bytes: excluded files were read", res.Stats.BytesRead)
	}
}

// /dev/shm and /dev/pts are mounts below /dev in containers and on most Linux hosts.
func TestOneFileSystemStopsAtMountPoints(t *testing.T) {
	var dev, shm unix.Stat_t
	if unix.Stat("/dev", &dev) != nil || unix.Stat("/dev/shm", &shm) != nil || dev.Dev == shm.Dev {
		t.Skip("/dev/shm is not a separate mount here")
	}
	ctx := context.Background()
	bs := memblobs.New(1 << 20)
	res, err := Backup(ctx, bs, []string{"/dev"}, Options{OneFileSystem: true, Exclude: func(p string, n *repo.Node) bool {
		return n.Type == repo.NodeFile // /dev holds no regular files worth reading
	}})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	must(t, List(ctx, bs, res.Root, func(p string, n *repo.Node) error {
		if p == "/dev/shm" {
			found = true
			if n.Subtree != nil {
				t.Errorf("/dev/shm (another filesystem) was entered")
			}
		}
		if strings.HasPrefix(p, "/dev/") && n.DeviceID != dev.Dev && strings.Count(p, "/") > 2 {
			t.Errorf("%s is on another filesystem but in the snapshot", p)
		}
		return nil
	}))
	if !found {
		t.Fatal("/dev/shm missing: the mount point itself must be kept")
	}
}

func TestCancelledRunsStop(t *testing.T) {
	dir, src := makeFixture(t)
	bs := memblobs.New(1 << 20)
	res, err := Backup(context.Background(), bs, []string{src}, Options{Chunking: smallChunks})
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Backup(ctx, bs, []string{src}, Options{Chunking: smallChunks}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled backup: err %v", err)
	}
	if _, err := Restore(ctx, bs, res.Root, filepath.Join(dir, "out"), RestoreOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled restore: err %v", err)
	}
}

// Backing up "/" walks the root like any directory (here cut down to one temp folder by
// Exclude, to keep the test small).
func TestBackupOfRoot(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f"), []byte("x"), 0o644)
	onPath := func(p string) bool { return p == dir || strings.HasPrefix(dir, p+"/") || strings.HasPrefix(p, dir+"/") }
	bs := memblobs.New(1 << 20)
	res, err := Backup(ctx, bs, []string{"/"}, Options{Exclude: func(p string, _ *repo.Node) bool { return !onPath(p) }})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	must(t, List(ctx, bs, res.Root, func(p string, n *repo.Node) error {
		got = append(got, p)
		return nil
	}))
	if len(got) == 0 || got[len(got)-1] != filepath.Join(dir, "f") || res.Stats.FilesNew != 1 {
		t.Fatalf("backup of / holds %v (stats %+v)", got, res.Stats)
	}
}
