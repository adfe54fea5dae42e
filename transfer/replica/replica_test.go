package replica_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/disk/disktest"

	"github.com/klauspost/compress/zstd"

	"github.com/snapferry/snapferry/transfer/replica"
	"github.com/snapferry/snapferry/transfer/serve"
	"github.com/snapferry/snapferry/transfer/wire"
)

const bs = 256 << 10

type vm struct {
	src, root   string
	disk        *disk
	vmx, nvram  string
	files       []replica.File
	replicaDisk string
}

// newVM makes a 64-block sparse disk with data in a few places, a .vmx and an .nvram.
func newVM(t testing.TB) *vm {
	src, root := t.TempDir(), t.TempDir()
	v := &vm{src: src, root: root}
	v.disk = newDisk(t, filepath.Join(src, "vm1-flat.vmdk"), 64*bs, bs)
	v.disk.fill(0, 1, 2, 10, 11, 40, 63)
	v.vmx = filepath.Join(src, "vm1.vmx")
	v.nvram = filepath.Join(src, "vm1.nvram")
	must(t, os.WriteFile(v.vmx, []byte("displayName = \"vm1\"\nmemSize = \"1024\"\n"), 0o644))
	must(t, os.WriteFile(v.nvram, bytes.Repeat([]byte{0xA5}, 8684), 0o644))
	v.files = []replica.File{
		{Name: "vm1-flat.vmdk", Source: v.disk.path, Disk: true},
		{Name: "vm1.vmx", Source: v.vmx},
		{Name: "vm1.nvram", Source: v.nvram},
	}
	v.replicaDisk = filepath.Join(root, "vm1", "vm1-flat.vmdk")
	return v
}

func (v *vm) assertSame(t *testing.T) {
	t.Helper()
	for _, f := range v.files {
		got := filepath.Join(v.root, "vm1", f.Name)
		if disktest.FileSum(t, got) != disktest.FileSum(t, f.Source) {
			t.Errorf("replica %s differs from its source", got)
		}
	}
}

func compressedSize(t testing.TB, d *disk, blocks ...int64) int64 {
	enc, _ := zstd.NewWriter(nil)
	defer enc.Close()
	f, err := os.Open(d.path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var n int64
	buf := make([]byte, d.bs)
	for _, b := range blocks {
		f.ReadAt(buf, b*d.bs)
		n += int64(len(enc.EncodeAll(buf, nil)))
	}
	return n
}

func TestFullThenIncrementalSendsOnlyChangedBlocks(t *testing.T) {
	v := newVM(t)
	s := inProcess(t, v.root, serve.Options{})
	st := push(t, s, "vm1", v.files, bs)
	v.assertSame(t)
	if st.BlocksChanged != 7 || st.BytesChanged != 7*bs || st.BytesRead != 7*bs {
		t.Errorf("full run: %+v; want 7 changed blocks, 7 blocks read (holes are not read)", st)
	}
	// Holes stay holes: the replica uses about what the source uses, not 64 blocks.
	if a := disktest.Allocated(t, v.replicaDisk); a > disktest.Allocated(t, v.disk.path)+bs {
		t.Errorf("replica allocates %d bytes, source %d: holes were filled", a, disktest.Allocated(t, v.disk.path))
	}

	// Change three blocks (one was a hole), zero one data block.
	v.disk.fill(2, 30, 63)
	v.disk.zero(10)
	st = push(t, s, "vm1", v.files, bs)
	v.assertSame(t)
	if st.BlocksChanged != 4 || st.ZeroBlocks != 1 || st.BytesChanged != 3*bs {
		t.Errorf("incremental run: %+v; want 4 changed blocks, 1 of them zero, 3 blocks of data", st)
	}
	small := fileSize(t, v.vmx) + fileSize(t, v.nvram)
	if limit := compressedSize(t, v.disk, 2, 30, 63)*12/10 + small + 1024; st.BytesSent > limit {
		t.Errorf("incremental run sent %d bytes, want <= %d (1.2x the changed data compressed plus small files)", st.BytesSent, limit)
	}
	before := disktest.Allocated(t, v.replicaDisk)
	// The zeroed block became a hole on the far side.
	if before > disktest.Allocated(t, v.disk.path) {
		t.Errorf("replica allocates %d bytes, source %d: the zeroed block was not punched", before, disktest.Allocated(t, v.disk.path))
	}

	// Nothing changed: nothing but the small files travels.
	var calls int
	var last replica.Stats
	st, err := replica.Push(context.Background(), s.sess, "vm1", v.files, replica.Options{BlockSize: bs, Progress: func(p replica.Stats) {
		calls++
		if p.BytesScanned < last.BytesScanned || p.Files < last.Files {
			t.Errorf("progress went backwards: %+v after %+v", p, last)
		}
		last = p
	}})
	must(t, err)
	if calls != 3 || last.Files != 3 || last.BytesScanned != st.BytesScanned {
		t.Errorf("progress: %d calls, last %+v; want one per file ending with the totals %+v", calls, last, st)
	}
	if st.BlocksChanged != 0 || st.BytesSent != small {
		t.Errorf("unchanged run: %+v", st)
	}
	v.assertSame(t)
}

func TestNestedNames(t *testing.T) {
	v := newVM(t)
	s := inProcess(t, v.root, serve.Options{})
	files := []replica.File{
		{Name: "disks/a/vm1-flat.vmdk", Source: v.disk.path, Disk: true},
		{Name: "conf/vm1.vmx", Source: v.vmx},
	}
	push(t, s, "vm1", files, bs)
	for _, f := range files {
		if disktest.FileSum(t, filepath.Join(v.root, "vm1", f.Name)) != disktest.FileSum(t, f.Source) {
			t.Errorf("replica of %s differs", f.Name)
		}
	}
}

func TestGrowAndShrink(t *testing.T) {
	v := newVM(t)
	s := inProcess(t, v.root, serve.Options{})
	push(t, s, "vm1", v.files, bs)
	// Grow by 10.5 blocks with data at the end.
	must(t, os.Truncate(v.disk.path, 74*bs+bs/2))
	v.disk.fill(70)
	st := push(t, s, "vm1", v.files, bs)
	v.assertSame(t)
	if st.BlocksChanged != 1 {
		t.Errorf("grow: %d blocks changed, want 1 (the new data block; grown space is holes)", st.BlocksChanged)
	}
	// Shrink into the middle of a block.
	must(t, os.Truncate(v.disk.path, 40*bs+1000))
	st = push(t, s, "vm1", v.files, bs)
	v.assertSame(t)
	if st.BlocksChanged != 1 {
		t.Errorf("shrink: %d blocks changed, want 1 (the cut last block)", st.BlocksChanged)
	}
}

func TestStaleSidecarIsRebuilt(t *testing.T) {
	v := newVM(t)
	s := inProcess(t, v.root, serve.Options{})
	push(t, s, "vm1", v.files, bs)
	// Someone writes to the replica behind our back: the sidecar no longer describes it.
	f, err := os.OpenFile(v.replicaDisk, os.O_RDWR, 0)
	must(t, err)
	f.WriteAt([]byte("scribble"), 11*bs+5)
	f.Close()
	st := push(t, s, "vm1", v.files, bs)
	v.assertSame(t)
	if st.BlocksChanged != 1 {
		t.Errorf("after an out-of-band write: %d blocks changed, want 1", st.BlocksChanged)
	}
	// A different block size makes the far side rehash too, and the result is the same.
	st = push(t, s, "vm1", v.files, 2*bs)
	v.assertSame(t)
	if st.BlocksChanged != 0 {
		t.Errorf("after a block size change: %d blocks changed, want 0", st.BlocksChanged)
	}
}

func TestFailedPushRollsBack(t *testing.T) {
	v := newVM(t)
	s := inProcess(t, v.root, serve.Options{})
	push(t, s, "vm1", v.files, bs)
	oldDisk, oldVmx := disktest.FileSum(t, v.replicaDisk), disktest.FileSum(t, filepath.Join(v.root, "vm1", "vm1.vmx"))
	v.disk.fill(3, 4, 5)
	must(t, os.Truncate(v.disk.path, 20*bs)) // shrink too
	must(t, os.WriteFile(v.vmx, []byte("changed\n"), 0o644))
	files := append(v.files[:3:3], replica.File{Name: "missing.nvram", Source: filepath.Join(v.src, "no-such-file")})
	_, err := replica.Push(context.Background(), s.sess, "vm1", files, replica.Options{BlockSize: bs})
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("push with a missing source: %v", err)
	}
	if disktest.FileSum(t, v.replicaDisk) != oldDisk || disktest.FileSum(t, filepath.Join(v.root, "vm1", "vm1.vmx")) != oldVmx {
		t.Fatal("a failed push left a changed replica")
	}
	if _, err := os.Stat(filepath.Join(v.root, "vm1", "missing.nvram")); err == nil {
		t.Error("a file of the failed push is still there")
	}
	// The restored replica's sidecar is fresh again: the rerun sends only what changed.
	st := push(t, s, "vm1", v.files, bs)
	v.assertSame(t)
	if st.BlocksChanged != 3 {
		t.Errorf("rerun after rollback: %d blocks changed, want 3", st.BlocksChanged)
	}
}

func TestAppendOnlyServerRefusesReplicas(t *testing.T) {
	v := newVM(t)
	s := inProcess(t, v.root, serve.Options{AppendOnly: true})
	_, err := replica.Push(context.Background(), s.sess, "vm1", v.files, replica.Options{BlockSize: bs})
	if !errors.Is(err, wire.ErrRefused) {
		t.Fatalf("push to an append-only server: %v", err)
	}
}

func TestRefusesEscapingNames(t *testing.T) {
	v := newVM(t)
	s := inProcess(t, v.root, serve.Options{})
	for _, set := range []string{"../x", "/abs", "a/../../b", "a\nb"} {
		if _, err := replica.Push(context.Background(), s.sess, set, v.files, replica.Options{BlockSize: bs}); !errors.Is(err, os.ErrPermission) {
			t.Errorf("set %q: %v, want refused", set, err)
		}
	}
	bad := []replica.File{{Name: "../../escape", Source: v.vmx}}
	if _, err := replica.Push(context.Background(), s.sess, "vm1", bad, replica.Options{BlockSize: bs}); !errors.Is(err, os.ErrPermission) {
		t.Errorf("file name escaping the set: %v, want refused", err)
	}
	outside := t.TempDir()
	must(t, os.Symlink(outside, filepath.Join(v.root, "link")))
	if _, err := replica.Push(context.Background(), s.sess, "link", v.files, replica.Options{BlockSize: bs}); !errors.Is(err, os.ErrPermission) {
		t.Errorf("set through a symlink to outside: %v, want refused", err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("files were written outside the root: %v", entries)
	}
}

func fileSize(t testing.TB, p string) int64 {
	fi, err := os.Stat(p)
	must(t, err)
	return fi.Size()
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestProgressWithinALargeFile(t *testing.T) {
	const small = replica.MinBlockSize
	src, root := t.TempDir(), t.TempDir()
	d := newDisk(t, filepath.Join(src, "big-flat.vmdk"), 600*small, small)
	d.fill(0, 300, 599)
	s := inProcess(t, root, serve.Options{})
	var seen []int64
	_, err := replica.Push(context.Background(), s.sess, "big", []replica.File{{Name: "big-flat.vmdk", Source: d.path, Disk: true}},
		replica.Options{BlockSize: small, Progress: func(p replica.Stats) { seen = append(seen, p.BytesScanned) }})
	must(t, err)
	want := []int64{255 * small, 511 * small, 600 * small}
	if len(seen) != len(want) {
		t.Fatalf("progress scanned %v, want %v", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("progress scanned %v, want %v", seen, want)
		}
	}
}

// TestLongHashStreamWhileWriting: the far side's hash stream of a big file is longer than one
// flow-control window and the changed blocks come early, so the client sends (and the server
// must take) the write while the hash stream is still flowing.
func TestLongHashStreamWhileWriting(t *testing.T) {
	const small = replica.MinBlockSize
	const blocks = 70_000 // 70,000 x 16-byte hashes > the 1 MiB window
	src, root := t.TempDir(), t.TempDir()
	d := newDisk(t, filepath.Join(src, "thin-flat.vmdk"), blocks*small, small)
	d.fill(1, blocks-1)
	s := inProcess(t, root, serve.Options{})
	files := []replica.File{{Name: "thin-flat.vmdk", Source: d.path, Disk: true}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := replica.Push(ctx, s.sess, "thin", files, replica.Options{BlockSize: small}); err != nil {
		t.Fatal(err)
	}
	var early []int64
	for b := int64(2); b < 60; b++ { // about 2 MiB of records, more than a window
		early = append(early, b)
	}
	d.fill(early...)
	st, err := replica.Push(ctx, s.sess, "thin", files, replica.Options{BlockSize: small})
	if err != nil {
		t.Fatalf("incremental push of a long file: %v", err)
	}
	if st.BlocksChanged != int64(len(early)) {
		t.Errorf("changed %d blocks, want %d", st.BlocksChanged, len(early))
	}
	// Hashing 4 GiB of holes twice would dominate the test: compare the data blocks and check
	// that everything else is still a hole (the allocations match).
	rep := filepath.Join(root, "thin", "thin-flat.vmdk")
	if fileSize(t, rep) != fileSize(t, d.path) {
		t.Fatalf("replica size %d, source %d", fileSize(t, rep), fileSize(t, d.path))
	}
	for _, b := range append(early, 1, blocks-1) {
		if !bytes.Equal(readBlock(t, rep, b, small), readBlock(t, d.path, b, small)) {
			t.Errorf("block %d differs", b)
		}
	}
	if a, want := disktest.Allocated(t, rep), disktest.Allocated(t, d.path); a > want+small {
		t.Errorf("replica allocates %d bytes, source %d", a, want)
	}
}

func readBlock(t testing.TB, path string, b, bs int64) []byte {
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	buf := make([]byte, bs)
	_, err = f.ReadAt(buf, b*bs)
	must(t, err)
	return buf
}
