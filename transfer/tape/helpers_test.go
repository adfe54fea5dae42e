package tape_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/disk/disktest"

	"github.com/snapferry/snapferry/images/disk"
	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/transfer/tape"
	"github.com/snapferry/snapferry/transfer/tape/device"
)

const (
	testTapeBlock = 16 << 10 // small tape records keep spanning tests small
	testDiskBlock = 64 << 10
)

// newDrive returns a Drive on a virtual tape (the file at path) with a catalog in its own state
// folder.
func newDrive(t *testing.T, path string) *tape.Drive {
	t.Helper()
	return &tape.Drive{Path: path, Catalog: tape.NewCatalogFile(filepath.Join(filepath.Dir(path), "state")), Host: "tapehost"}
}

func label(t *testing.T, d *tape.Drive, pool, volume string) tape.Label {
	t.Helper()
	l, err := d.Label(context.Background(), tape.LabelOptions{Pool: pool, Volume: volume, BlockSize: testTapeBlock})
	if err != nil {
		t.Fatalf("label %s: %v", d.Path, err)
	}
	return l
}

// makeImage writes a sparse image with pseudo-random 64 KiB pieces at the given block numbers.
func makeImage(t *testing.T, path string, size int64, seed uint64, blocks ...int64) {
	t.Helper()
	var pieces []disktest.Piece
	for _, b := range blocks {
		pieces = append(pieces, disktest.Piece{Off: b * testDiskBlock, Data: memblobs.RandBytes(seed*1000+uint64(b), testDiskBlock)})
	}
	disktest.SparseFile(t, path, size, pieces...)
}

// writeImageSet backs up one image file into a new save set of s, as the CLI does.
func writeImageSet(t *testing.T, s *tape.Session, img string) tape.SetEntry {
	t.Helper()
	w, err := s.BeginSet(tape.SetHeader{Host: "client", Source: img, Kind: repo.SnapshotImage})
	if err != nil {
		t.Fatalf("begin set for %s: %v", img, err)
	}
	return fillImageSet(t, w, img)
}

// fillImageSet backs up img into the open set w and finishes it.
func fillImageSet(t *testing.T, w *tape.SetWriter, img string) tape.SetEntry {
	enc, err := tape.NewEncoder(w, testDiskBlock)
	if err != nil {
		t.Fatal(err)
	}
	d, st, err := disk.Backup(context.Background(), enc, img, disk.Options{})
	if err != nil {
		w.Abort()
		t.Errorf("back up %s to tape: %v", img, err)
		return tape.SetEntry{}
	}
	sn := &repo.Snapshot{Version: 1, Time: time.Now(), Host: "client", Kind: repo.SnapshotImage, Source: img, Disks: []repo.Disk{d}, Stats: st}
	_, info, err := enc.Finish(sn)
	if err != nil {
		t.Error(err)
	}
	e, err := w.Finish(info)
	if err != nil {
		t.Errorf("finish set of %s: %v", img, err)
	}
	return e
}

// restoreSet reads a set back through Unpack into memory and restores its disk to out.
func restoreSet(t *testing.T, d *tape.Drive, id, out string) error {
	t.Helper()
	cat, err := d.Catalog.Load()
	if err != nil {
		return err
	}
	e, err := cat.Find(id, "")
	if err != nil {
		return err
	}
	var stream bytes.Buffer
	if err := d.ReadSet(context.Background(), e, &stream); err != nil {
		return err
	}
	bs := memblobs.New(testDiskBlock)
	sn, err := tape.Unpack(context.Background(), &stream, bs)
	if err != nil {
		return err
	}
	return disk.Restore(context.Background(), bs, sn.Disks[0], out, disk.RestoreOptions{})
}

func sameFile(t *testing.T, a, b string) {
	t.Helper()
	if disktest.FileSum(t, a) != disktest.FileSum(t, b) {
		t.Fatalf("%s differs from %s", b, a)
	}
}

// countingDevice counts the records read, to prove a restore skips files instead of reading them.
type countingDevice struct {
	device.Device
	reads *int
}

func (c countingDevice) ReadRecord(p []byte) (int, error) {
	*c.reads++
	return c.Device.ReadRecord(p)
}

// virtualRecordOffset finds the byte offset of record rec of file file in a virtual tape file
// (see device/virtual.go for the layout), so a test can damage exactly that record.
func virtualRecordOffset(t *testing.T, path string, file, rec int) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	off, f, r := int64(32), 0, 0
	for off < int64(len(b)) {
		kind, n := b[off], int64(binary.LittleEndian.Uint32(b[off+1:]))
		if kind == 2 {
			f, r, off = f+1, 0, off+5
			continue
		}
		if f == file && r == rec {
			return off + 5
		}
		r++
		off += 5 + n
	}
	t.Fatalf("no record %d in file %d of %s", rec, file, path)
	return 0
}
