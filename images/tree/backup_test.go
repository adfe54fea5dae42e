package tree

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/images/progress"
	"github.com/snapferry/snapferry/images/repo"
)

// makeFixture builds, in a new temp dir, a tree "src" with every kind of entry and metadata
// restore must keep, and returns the temp dir and src.
func makeFixture(t *testing.T) (dir, src string) {
	t.Helper()
	dir = t.TempDir()
	src = filepath.Join(dir, "src")
	t.Cleanup(func() { os.Chmod(filepath.Join(src, "a/b/c"), 0o755) })
	writeFile(t, filepath.Join(src, "small.txt"), []byte("hello\n"), 0o644)
	writeFile(t, filepath.Join(src, "empty"), nil, 0o600)
	writeFile(t, filepath.Join(src, "big.bin"), memblobs.RandBytes(1, 700<<10), 0o640)    // many chunks
	writeFile(t, filepath.Join(src, "mid.bin"), memblobs.RandBytes(2, 40<<10), 0o644)     // between min and max
	writeFile(t, filepath.Join(src, "exact.bin"), memblobs.RandBytes(3, 4<<10), 0o644)    // exactly min: one blob
	writeFile(t, filepath.Join(src, "setuid"), []byte("#!/bin/sh\n"), 0o4755)             // mode bits beyond perm
	writeFile(t, filepath.Join(src, "a/b/c/deep.txt"), []byte("deep"), 0o444)             // read-only file
	writeFile(t, filepath.Join(src, "a/b/other.txt"), memblobs.RandBytes(4, 9000), 0o600) // small
	writeFile(t, filepath.Join(src, "links/one"), []byte("linked"), 0o644)
	must(t, os.Link(filepath.Join(src, "links/one"), filepath.Join(src, "a/two")))
	must(t, os.Symlink("../small.txt", filepath.Join(src, "links/rel")))
	must(t, os.Symlink("/etc/passwd", filepath.Join(src, "links/abs")))
	must(t, os.Symlink("does-not-exist", filepath.Join(src, "links/dangling")))
	must(t, unix.Mkfifo(filepath.Join(src, "fifo"), 0o620))
	must(t, os.Mkdir(filepath.Join(src, "sticky"), 0o1777))
	must(t, os.Chmod(filepath.Join(src, "sticky"), 0o1777))
	if os.Geteuid() == 0 {
		must(t, unix.Mknod(filepath.Join(src, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		must(t, os.Lchown(filepath.Join(src, "a/b/other.txt"), 1234, 5678))
		must(t, os.Lchown(filepath.Join(src, "links/rel"), 4321, 8765))
		must(t, os.Chown(filepath.Join(src, "a/b"), 99, 98))
	}
	// Times last, deepest first, since creating entries changes their directory's mtime.
	var paths []string
	must(t, filepath.Walk(src, func(p string, _ os.FileInfo, err error) error {
		paths = append(paths, p)
		return err
	}))
	slices.Reverse(paths)
	for i, p := range paths {
		setTimes(t, p, int64(i))
	}
	must(t, os.Chmod(filepath.Join(src, "a/b/c"), 0o555)) // read-only dir: restore must still fill it
	return dir, src
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestBackupRestoreKeepsEverything(t *testing.T) {
	ctx := context.Background()
	dir, src := makeFixture(t)

	bs := memblobs.New(1 << 20)
	var prog progress.Counter
	res, err := Backup(ctx, bs, []string{src}, Options{Chunking: smallChunks, Workers: 3, Progress: &prog})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) != 0 {
		t.Fatalf("errors: %v", res.Errors)
	}
	if res.Stats.FilesNew != 10 || res.Stats.FilesUnchanged != 0 {
		t.Fatalf("stats %+v, want 10 new files", res.Stats)
	}
	wantRead := int64(6 + 700<<10 + 40<<10 + 4<<10 + 10 + 4 + 9000 + 6*2)
	if res.Stats.BytesRead != wantRead || prog.Snapshot().Bytes != wantRead {
		t.Fatalf("read %d bytes (progress %d), want %d", res.Stats.BytesRead, prog.Snapshot().Bytes, wantRead)
	}

	target := filepath.Join(dir, "restore")
	errs, err := Restore(ctx, bs, res.Root, target, RestoreOptions{Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) != 0 {
		t.Fatalf("restore errors: %v", errs)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(target, src, "a/b/c"), 0o755) })
	compareTrees(t, src, filepath.Join(target, src))

	// The parent directories of the backed-up path exist in the restore too.
	if fi, err := os.Stat(filepath.Join(target, dir)); err != nil || !fi.IsDir() {
		t.Fatalf("parent directory %s not restored: %v", dir, err)
	}

	// The big file was cut into several content-defined chunks.
	var bigChunks int
	must(t, List(ctx, bs, res.Root, func(p string, n *repo.Node) error {
		if strings.HasSuffix(p, "/big.bin") {
			bigChunks = len(n.Content)
		}
		if strings.HasSuffix(p, "/exact.bin") && len(n.Content) != 1 {
			t.Errorf("file of exactly the minimum chunk size has %d chunks", len(n.Content))
		}
		return nil
	}))
	if bigChunks < 700/64 {
		t.Fatalf("700 KiB file has %d chunks with max 64 KiB", bigChunks)
	}
}

func TestUnchangedFilesAreNotRead(t *testing.T) {
	ctx := context.Background()
	dir, src := makeFixture(t)
	bs := memblobs.New(1 << 20)
	first, err := Backup(ctx, bs, []string{src}, Options{Chunking: smallChunks})
	if err != nil {
		t.Fatal(err)
	}

	// Nothing changed: nothing is read and no blob is new.
	same, err := Backup(ctx, bs, []string{src}, Options{Chunking: smallChunks, Parent: &first.Root})
	if err != nil {
		t.Fatal(err)
	}
	// The folders above src (/tmp...) are recorded too, and other processes change /tmp's mtime
	// at any moment: the trees from src down must be the very same blobs; only the trees of
	// src's parents may be new, and only when one of them changed.
	ancestors := strings.Count(filepath.Clean(src), "/")
	if same.Stats.BytesRead != 0 || same.Stats.FilesUnchanged != 10 || same.Stats.BlobsNew > ancestors ||
		subtree(t, bs, same.Root, src) != subtree(t, bs, first.Root, src) {
		t.Fatalf("unchanged backup stats %+v, want nothing read and no new blobs below %s", same.Stats, src)
	}
	if same.Root != first.Root && same.Stats.BlobsNew == 0 {
		t.Fatal("unchanged tree got a different root id with no new tree blob")
	}
	// The logical size counts every file, read or not.
	if first.Size != first.Stats.BytesRead || same.Size != first.Size {
		t.Fatalf("sizes %d then %d, want %d both times", first.Size, same.Size, first.Stats.BytesRead)
	}

	// One file changed, one new: only those two are read.
	writeFile(t, filepath.Join(src, "a/b/other.txt"), memblobs.RandBytes(5, 9001), 0o600)
	writeFile(t, filepath.Join(src, "new.txt"), []byte("new file"), 0o644)
	next, err := Backup(ctx, bs, []string{src}, Options{Chunking: smallChunks, Parent: &first.Root})
	if err != nil {
		t.Fatal(err)
	}
	st := next.Stats
	if st.FilesChanged != 1 || st.FilesNew != 1 || st.FilesUnchanged != 9 || st.BytesRead != 9001+8 {
		t.Fatalf("stats %+v, want 1 changed, 1 new, 9 unchanged, %d bytes read", st, 9001+8)
	}
	target := filepath.Join(dir, "restore")
	if _, err := Restore(ctx, bs, next.Root, target, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(target, src, "a/b/c"), 0o755) })
	compareTrees(t, src, filepath.Join(target, src))
}

func TestInsertionCostsFewChunks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	data := memblobs.RandBytes(8, 2<<20)
	p := filepath.Join(dir, "f")
	writeFile(t, p, data, 0o644)
	bs := memblobs.New(1 << 20)
	first, err := Backup(ctx, bs, []string{p}, Options{Chunking: smallChunks})
	if err != nil {
		t.Fatal(err)
	}
	edited := slices.Concat(data[:1<<20], []byte("an insertion in the middle"), data[1<<20:])
	writeFile(t, p, edited, 0o644)
	second, err := Backup(ctx, bs, []string{p}, Options{Chunking: smallChunks, Parent: &first.Root})
	if err != nil {
		t.Fatal(err)
	}
	// New blobs: the one or two chunks around the insertion, plus the trees on the path.
	depth := strings.Count(p, "/")
	if newData := second.Stats.BlobsNew - depth; newData > 2 {
		t.Fatalf("insertion stored %d new data chunks of %d, want at most 2 (stats %+v)",
			newData, second.Stats.BlobsNew+second.Stats.BlobsReused-depth, second.Stats)
	}
}

func TestBackupSeveralPaths(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "x/one"), []byte("1"), 0o644)
	writeFile(t, filepath.Join(dir, "x/sub/two"), []byte("2"), 0o644)
	writeFile(t, filepath.Join(dir, "y/three"), []byte("3"), 0o644)
	writeFile(t, filepath.Join(dir, "z/not-selected"), []byte("4"), 0o644)
	bs := memblobs.New(1 << 20)
	// x/sub is inside x and must not be stored twice; y/three is a single file.
	res, err := Backup(ctx, bs, []string{filepath.Join(dir, "x"), filepath.Join(dir, "x/sub"), filepath.Join(dir, "y/three")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	must(t, List(ctx, bs, res.Root, func(p string, n *repo.Node) error {
		if strings.HasPrefix(p, dir) {
			got = append(got, strings.TrimPrefix(p, dir)+":"+n.Type)
		}
		return nil
	}))
	want := []string{":dir", "/x:dir", "/x/one:file", "/x/sub:dir", "/x/sub/two:file", "/y:dir", "/y/three:file"}
	if !slices.Equal(got, want) {
		t.Fatalf("listing %v, want %v", got, want)
	}
	if _, err := Backup(ctx, bs, []string{filepath.Join(dir, "missing")}, Options{}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing path: err %v", err)
	}
	if _, err := Backup(ctx, bs, []string{dir}, Options{Chunking: Chunking{Min: 10, Avg: 5, Max: 1}}); err == nil {
		t.Fatal("bad chunk sizes accepted")
	}
}

// A sparse file in a tree comes back sparse: zero pages are not written on restore.
func TestSparseFileRestoresSparse(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := filepath.Join(dir, "src", "thin.img")
	writeFile(t, p, nil, 0o644)
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	must(t, err)
	must(t, f.Truncate(64<<20))
	_, err = f.WriteAt(memblobs.RandBytes(1, 100<<10), 10<<20)
	must(t, err)
	must(t, f.Close())
	bs := memblobs.New(1 << 20)
	res, err := Backup(ctx, bs, []string{filepath.Dir(p)}, Options{})
	must(t, err)
	target := filepath.Join(dir, "out")
	errs, err := Restore(ctx, bs, res.Root, target, RestoreOptions{})
	if err != nil || len(errs) > 0 {
		t.Fatal(err, errs)
	}
	compareTrees(t, filepath.Dir(p), filepath.Join(target, filepath.Dir(p)))
	var st unix.Stat_t
	must(t, unix.Stat(filepath.Join(target, p), &st))
	if st.Size != 64<<20 || st.Blocks*512 > 1<<20 {
		t.Fatalf("restored %d bytes with %d allocated, want 64 MiB apparent and little allocated", st.Size, st.Blocks*512)
	}
}
