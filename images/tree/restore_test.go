package tree

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/disk/memblobs"
	"github.com/snapferry/snapferry/images/overwrite"
	"github.com/snapferry/snapferry/images/repo"
)

// saveTree stores a hand-made tree, as a crafted snapshot would contain it.
func saveTree(t *testing.T, bs repo.BlobStore, nodes ...repo.Node) repo.ID {
	t.Helper()
	tr := repo.Tree{Nodes: nodes}
	data, err := tr.Marshal()
	must(t, err)
	id := bs.BlobID(data)
	_, err = bs.SaveBlob(context.Background(), repo.TreeBlob, id, data)
	must(t, err)
	return id
}

func saveData(t *testing.T, bs repo.BlobStore, data []byte) repo.ID {
	t.Helper()
	id := bs.BlobID(data)
	_, err := bs.SaveBlob(context.Background(), repo.DataBlob, id, data)
	must(t, err)
	return id
}

func TestRestoreRefusesCraftedNames(t *testing.T) {
	ctx := context.Background()
	bs := memblobs.New(1 << 20)
	payload := saveData(t, bs, []byte("owned\n"))
	now := time.Now()
	file := func(name string) repo.Node {
		return repo.Node{Name: name, Type: repo.NodeFile, Mode: 0o644, Size: 6, ModTime: now, Content: []repo.ID{payload}}
	}
	sub := saveTree(t, bs, file("x"))
	cases := map[string]repo.ID{
		"dotdot":     saveTree(t, bs, file("../escaped")),
		"slash":      saveTree(t, bs, file("a/../../escaped")),
		"dotdot-dir": saveTree(t, bs, repo.Node{Name: "..", Type: repo.NodeDir, Mode: 0o755 | uint32(os.ModeDir), ModTime: now, Subtree: &sub}),
		"empty":      saveTree(t, bs, file("")),
		"dot":        saveTree(t, bs, file(".")),
		"nul":        saveTree(t, bs, file("a\x00b")),
		"symlink-then-dir": saveTree(t, bs,
			repo.Node{Name: "d", Type: repo.NodeSymlink, LinkTarget: "..", ModTime: now},
			repo.Node{Name: "d", Type: repo.NodeDir, Mode: 0o755 | uint32(os.ModeDir), ModTime: now, Subtree: &sub}),
	}
	// Nested one level down, the bad name must be caught there as well.
	bad := cases["dotdot"]
	cases["nested"] = saveTree(t, bs, repo.Node{Name: "ok", Type: repo.NodeDir, Mode: 0o755 | uint32(os.ModeDir), ModTime: now, Subtree: &bad})
	// A directory whose subtree is an ancestor: the id of a tree cannot name itself, but a
	// crafted repository can store any bytes under any id, as Put does here.
	loopID := repo.ID{0xaa}
	loopTree := repo.Tree{Nodes: []repo.Node{{Name: "again", Type: repo.NodeDir, Mode: 0o755 | uint32(os.ModeDir), ModTime: now, Subtree: &loopID}}}
	loopData, _ := loopTree.Marshal()
	cs := &checksumless{Store: bs, fake: map[repo.ID][]byte{loopID: loopData}}
	cases["cycle"] = loopID
	for name, root := range cases {
		t.Run(name, func(t *testing.T) {
			var bs repo.BlobStore = cs
			fds := openFDs(t)
			defer func() {
				if n := openFDs(t); n != fds {
					t.Errorf("%d file descriptors open after the failed restore, %d before", n, fds)
				}
			}()
			dir := t.TempDir()
			target := filepath.Join(dir, "t", "target")
			_, err := Restore(ctx, bs, root, target, RestoreOptions{})
			if !errors.Is(err, ErrUnsafeTree) {
				t.Fatalf("restore of crafted tree: err %v, want ErrUnsafeTree", err)
			}
			for _, p := range []string{filepath.Join(dir, "t", "escaped"), filepath.Join(dir, "escaped"), filepath.Join(dir, "t", "x")} {
				if _, err := os.Lstat(p); err == nil {
					t.Fatalf("%s was written outside the target", p)
				}
			}
			if err := List(ctx, bs, root, func(string, *repo.Node) error { return nil }); !errors.Is(err, ErrUnsafeTree) {
				t.Fatalf("list of crafted tree: err %v, want ErrUnsafeTree", err)
			}
		})
	}
}

// A symlink already in the target is never followed: a directory or file of that name in the
// snapshot keeps the link (it differs) or, with Overwrite, replaces it, never writing where it
// points.
func TestRestoreDoesNotFollowExistingSymlinks(t *testing.T) {
	ctx := context.Background()
	bs := memblobs.New(1 << 20)
	now := time.Now()
	payload := saveData(t, bs, []byte("data"))
	sub := saveTree(t, bs, repo.Node{Name: "f", Type: repo.NodeFile, Mode: 0o644, Size: 4, ModTime: now, Content: []repo.ID{payload}})
	root := saveTree(t, bs,
		repo.Node{Name: "d", Type: repo.NodeDir, Mode: 0o755 | uint32(os.ModeDir), ModTime: now, Subtree: &sub},
		repo.Node{Name: "f", Type: repo.NodeFile, Mode: 0o644, Size: 4, ModTime: now, Content: []repo.ID{payload}})
	dir := t.TempDir()
	outside := filepath.Join(dir, "outside")
	must(t, os.Mkdir(outside, 0o755))
	target := filepath.Join(dir, "target")
	must(t, os.Mkdir(target, 0o755))
	must(t, os.Symlink(outside, filepath.Join(target, "d")))
	must(t, os.Symlink(filepath.Join(outside, "f"), filepath.Join(target, "f")))
	errs, err := Restore(ctx, bs, root, target, RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) != 2 || !errors.Is(errs[0], overwrite.ErrDiffers) || !errors.Is(errs[1], overwrite.ErrDiffers) {
		t.Fatalf("errors %v, want both symlinks kept", errs)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("restore wrote through a symlink into %s: %v", outside, entries)
	}
	errs, err = Restore(ctx, bs, root, target, RestoreOptions{Overwrite: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) != 0 {
		t.Fatalf("errors %v", errs)
	}
	for _, p := range []string{"d/f", "f"} {
		if fi, err := os.Lstat(filepath.Join(target, p)); err != nil || !fi.Mode().IsRegular() {
			t.Fatalf("%s not restored as a file: %v", p, err)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("restore wrote through a symlink into %s: %v", outside, entries)
	}
}

func TestRestoreInclude(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeFile(t, filepath.Join(src, "keep/a.txt"), []byte("a"), 0o644)
	writeFile(t, filepath.Join(src, "keep/deeper/b.txt"), []byte("b"), 0o644)
	writeFile(t, filepath.Join(src, "skip/c.txt"), []byte("c"), 0o644)
	writeFile(t, filepath.Join(src, "keepnot.txt"), []byte("d"), 0o644)
	bs := memblobs.New(1 << 20)
	res, err := Backup(ctx, bs, []string{src}, Options{})
	must(t, err)
	target := filepath.Join(dir, "out")
	if _, err := Restore(ctx, bs, res.Root, target, RestoreOptions{Include: []string{filepath.Join(src, "keep")}}); err != nil {
		t.Fatal(err)
	}
	var got []string
	must(t, filepath.Walk(filepath.Join(target, src), func(p string, _ os.FileInfo, err error) error {
		rel, _ := filepath.Rel(filepath.Join(target, src), p)
		got = append(got, rel)
		return err
	}))
	if strings.Join(got, " ") != ". keep keep/a.txt keep/deeper keep/deeper/b.txt" {
		t.Fatalf("restored %v", got)
	}
	_, err = Restore(ctx, bs, res.Root, target, RestoreOptions{Include: []string{filepath.Join(src, "nope")}})
	if err == nil || !strings.Contains(err.Error(), "nope not in the snapshot") {
		t.Fatalf("missing include: err %v", err)
	}
}

// A blob missing from the repository costs that file, not the restore.
func TestRestoreMissingBlobIsPartial(t *testing.T) {
	ctx := context.Background()
	bs := memblobs.New(1 << 20)
	now := time.Now()
	good := saveData(t, bs, []byte("good"))
	root := saveTree(t, bs,
		repo.Node{Name: "bad", Type: repo.NodeFile, Mode: 0o644, Size: 4, ModTime: now, Content: []repo.ID{{1, 2, 3}}},
		repo.Node{Name: "good", Type: repo.NodeFile, Mode: 0o644, Size: 4, ModTime: now, Content: []repo.ID{good}},
		repo.Node{Name: "unread", Type: repo.NodeFile, Mode: 0o644, Size: 9, ModTime: now, Error: "open: permission denied"})
	target := t.TempDir()
	errs, err := Restore(ctx, bs, root, target, RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) != 3 || errs[0].Path != "/bad" || errs[1].Path != "/bad" || // the load error and the short size
		errs[2].Path != "/unread" || !strings.Contains(errs[2].Error(), "could not read it") {
		t.Fatalf("errors %v, want /bad's and /unread's", errs)
	}
	if _, err := os.Lstat(filepath.Join(target, "bad")); err == nil {
		t.Fatal("a file that could not be restored was left (empty)")
	}
	noPartials(t, target)
	if _, err := os.Lstat(filepath.Join(target, "unread")); err == nil {
		t.Fatal("a file the backup could not read was restored (empty)")
	}
	if b, err := os.ReadFile(filepath.Join(target, "good")); err != nil || string(b) != "good" {
		t.Fatalf("good file: %q %v", b, err)
	}
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(entries)
}

// checksumless serves some blobs without verifying their ids, as a repository an attacker
// wrote could.
type checksumless struct {
	*memblobs.Store
	fake map[repo.ID][]byte
}

func (c *checksumless) LoadBlob(ctx context.Context, t repo.BlobType, id repo.ID, buf []byte) ([]byte, error) {
	if b, ok := c.fake[id]; ok {
		return append(buf[:0], b...), nil
	}
	return c.Store.LoadBlob(ctx, t, id, buf)
}
