package libvirt

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/snapferry/snapferry/cron/testkit"
	"github.com/snapferry/snapferry/images/disk"
	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/transfer/nbd"
	"github.com/snapferry/snapferry/transfer/nbd/nbdtest"
)

// The read-ahead sources give disk.BackupSource exactly the blocks of the wanted extents of a
// real qemu-nbd export (full: allocated; incremental: dirty since a bitmap; whole: all), with
// more blocks than the read-ahead depth and holes between them, and the snapshots restore to
// the image.
func TestNBDSourcesReadAhead(t *testing.T) {
	qnbd := testkit.RequireTool(t, "qemu-nbd")
	testkit.RequireTool(t, "qemu-img")
	testkit.RequireTool(t, "qemu-io")
	ctx := testCtx(t)
	dir := t.TempDir()
	const size, blk = 24 << 20, testBlock
	// 30 writes of 64 KiB, each in its own 256 KiB block (blocks 0, 3, 6, ...).
	var base []string
	for i := range 30 {
		base = append(base, fmt.Sprintf("write -P 0x%02x %d 64k", i+1, int64(3*i)*blk+int64(i%4)*64<<10))
	}
	img := qemuImg(t, dir, "ra.qcow2", "qcow2", size, base...)
	run(t, "qemu-img", "bitmap", "--add", img, "b0")
	_, r := memblobs.LocalRepo(t, blk, repo.ChunkerParams{})

	dial := func(extra []string, contexts ...string) (*nbd.Client, func()) {
		sock, stop, err := serveFile(ctx, qnbd, t.TempDir(), img, "qcow2", extra...)
		if err != nil {
			t.Fatal(err)
		}
		c, err := nbd.Dial(ctx, "unix", sock, nbd.Options{Export: "disk", MetaContexts: contexts})
		if err != nil {
			stop()
			t.Fatal(err)
		}
		return c, func() { c.Close(); stop() }
	}
	backup := func(src *nbdSource, parent *repo.Disk, partial bool, wantRead int64) repo.Disk {
		t.Helper()
		dk, st, err := disk.BackupSource(ctx, r, src, disk.SourceOptions{Name: "vda", Parent: parent, PartialBlocks: partial})
		if err != nil {
			t.Fatal(err)
		}
		if st.BytesRead != wantRead || src.unforeseen != 0 || wantRead > 0 && src.fromAhead == 0 {
			t.Fatalf("read %d bytes, want %d; %d reads not foreseen by the read-ahead, %d served by it",
				st.BytesRead, wantRead, src.unforeseen, src.fromAhead)
		}
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "vda.raw")
		if err := disk.Restore(ctx, r, dk, out, disk.RestoreOptions{}); err != nil {
			t.Fatal(err)
		}
		sameDisk(t, out, img)
		return dk
	}

	c, stop := dial(nil, nbd.ContextAllocation)
	full := backup(newFullSource(ctx, c, blk), nil, false, 30*blk)
	stop()
	c, stop = dial(nil)
	backup(newWholeSource(ctx, c, blk), nil, false, size)
	stop()

	// 12 writes after the bitmap, in blocks of their own (1, 4, 7, ...): the incremental reads
	// those blocks only and takes the rest from the full backup.
	args := []string{"-f", "qcow2"}
	for i := range 12 {
		args = append(args, "-c", fmt.Sprintf("write -P 0x%02x %d 64k", 0x80+i, int64(3*i+1)*blk+128<<10))
	}
	run(t, "qemu-io", append(args, img)...)
	c, stop = dial([]string{"--bitmap=b0"}, nbd.ContextAllocation, nbd.DirtyBitmapContext("b0"))
	backup(newDirtySource(ctx, c, blk, nbd.DirtyBitmapContext("b0"), false), &full, false, 12*blk)
	stop()
	// With PartialBlocks only the dirty 64 KiB pieces are read, over the parent's blocks.
	c, stop = dial([]string{"--bitmap=b0"}, nbd.ContextAllocation, nbd.DirtyBitmapContext("b0"))
	backup(newDirtySource(ctx, c, blk, nbd.DirtyBitmapContext("b0"), true), &full, true, 12*64<<10)
	stop()

	// Reads the read-ahead did not foresee (unaligned, backwards, skipping) still get the
	// image's bytes, and block reads after them are served from a fresh read-ahead.
	raw := filepath.Join(dir, "ra.raw")
	run(t, "qemu-img", "convert", "-f", "qcow2", "-O", "raw", img, raw)
	want, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	c, stop = dial(nil, nbd.ContextAllocation)
	defer stop()
	src := newFullSource(ctx, c, blk)
	if _, _, _, err := src.Next(ctx, 0); err != nil {
		t.Fatal(err)
	}
	for _, rd := range []struct{ off, n int64 }{{0, blk}, {3 * blk, blk}, {100, 5000}, {21 * blk, blk}, {6 * blk, blk}, {9 * blk, blk}, {size - blk, blk}, {12 * blk, 3 * blk}} {
		p := make([]byte, rd.n)
		if n, err := src.ReadAt(p, rd.off); err != nil || n != len(p) || !bytes.Equal(p, want[rd.off:rd.off+rd.n]) {
			t.Fatalf("read %d+%d: %d, %v (equal %v)", rd.off, rd.n, n, err, bytes.Equal(p, want[rd.off:rd.off+rd.n]))
		}
	}
}

// A backup through a source keeps several reads in flight on its one NBD connection: with our
// NBD server over a reader that holds each read until a second one arrives, two reads are
// seen at once. One request at a time would see one.
func TestNBDSourceKeepsReadsInFlight(t *testing.T) {
	data := make([]byte, 4<<20)
	for i := range data {
		data[i] = byte(i/4096 + i%251)
	}
	g := &nbdtest.PairReader{Data: data}
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := nbd.NewServer(nbd.Export{Name: "disk", Size: int64(len(data)), Data: g})
	sctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, l) }()
	defer func() { cancel(); <-served }()
	ctx := testCtx(t)
	c, err := nbd.Dial(ctx, "unix", sock, nbd.Options{Export: "disk"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, r := memblobs.LocalRepo(t, testBlock, repo.ChunkerParams{})
	dk, st, err := disk.BackupSource(ctx, r, newWholeSource(ctx, c, testBlock), disk.SourceOptions{Name: "vda"})
	if err != nil {
		t.Fatal(err)
	}
	if st.BytesRead != int64(len(data)) {
		t.Fatalf("read %d bytes", st.BytesRead)
	}
	if most := g.Most(); most < 2 {
		t.Fatalf("at most %d reads in flight", most)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "vda.raw")
	if err := disk.Restore(ctx, r, dk, out, disk.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("restored disk differs: %v", err)
	}
}
