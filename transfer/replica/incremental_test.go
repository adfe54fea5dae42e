package replica_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/images/disk/disktest"

	"github.com/snapferry/snapferry/transfer/replica"
	"github.com/snapferry/snapferry/transfer/serve"
	"github.com/snapferry/snapferry/transfer/wire"
)

// ranges is an Extents over fixed [start, end) pairs in increasing order.
type ranges [][2]int64

func (r ranges) Next(_ context.Context, off int64) (int64, int64, bool, error) {
	for _, x := range r {
		if x[1] > off {
			return max(x[0], off), x[1], true, nil
		}
	}
	return 0, 0, false, nil
}

// blockFile is a BlockSource over a file whose data lies in the given ranges (as a dirty
// bitmap's NBD export would tell).
type blockFile struct {
	*os.File
	size int64
	ranges
}

func (b blockFile) Size() int64 { return b.size }

func openBlocks(t *testing.T, path string, data ranges) blockFile {
	f, err := os.Open(path)
	must(t, err)
	t.Cleanup(func() { f.Close() })
	fi, err := f.Stat()
	must(t, err)
	return blockFile{File: f, size: fi.Size(), ranges: data}
}

// pushBlocks pushes one block-source disk and returns the stats and its disk report.
func pushBlocks(t *testing.T, s *server, f replica.File, marks bool) (replica.Stats, replica.DiskReport, error) {
	t.Helper()
	var rep replica.DiskReport
	st, err := replica.Push(context.Background(), s.sess, "vm1", []replica.File{f}, replica.Options{BlockSize: bs, Marks: marks,
		DiskDone: func(r replica.DiskReport) { rep = r }})
	return st, rep, err
}

// A disk whose changed ranges are known (a dirty bitmap) is updated by reading and sending only
// the blocks they touch, as long as the far copy still carries the mark of the update the ranges
// count from; a far copy changed since, a killed update in between, or a server without marks
// are each handled as they must be.
func TestChangedRangesSendOnlyThoseBlocks(t *testing.T) {
	v := newVM(t)
	all := ranges{{0, 64 * bs}}
	s := inProcess(t, v.root, serve.Options{})
	disk := replica.File{Name: "vm1-flat.vmdk", Disk: true, Blocks: openBlocks(t, v.disk.path, all)}
	_, first, err := pushBlocks(t, s, disk, true)
	must(t, err)
	if first.Incremental || !first.Mark.Exists || first.Mark.Size != 64*bs || first.Mark.Seed == 0 {
		t.Fatalf("first run report: %+v", first)
	}
	if disktest.FileSum(t, v.replicaDisk) != disktest.FileSum(t, v.disk.path) {
		t.Fatal("first replica differs from its source")
	}

	// Two blocks change; the changed ranges cover a few bytes of one and all of the other.
	v.disk.fill(5, 40)
	disk.Changed, disk.Base = ranges{{5*bs + 100, 5*bs + 200}, {40 * bs, 41 * bs}}, first.Mark
	st, rep, err := pushBlocks(t, s, disk, true)
	must(t, err)
	if !rep.Incremental || rep.Why != "" || st.BlocksChanged != 2 || st.BytesRead != 2*bs {
		t.Fatalf("incremental run: %+v %+v; want 2 blocks read and sent", rep, st)
	}
	if limit := compressedSize(t, v.disk, 5, 40)*12/10 + 1024; st.BytesSent > limit {
		t.Errorf("incremental run sent %d bytes, want <= %d", st.BytesSent, limit)
	}
	if disktest.FileSum(t, v.replicaDisk) != disktest.FileSum(t, v.disk.path) {
		t.Fatal("replica differs from its source after the incremental run")
	}

	// An update killed half way rolls back, and the far copy carries the earlier mark again, so
	// the next run is still incremental from it.
	v.disk.fill(12, 13, 14)
	changed := ranges{{12 * bs, 15 * bs}}
	doomed := child(t, v.root, 2)
	_, _, err = pushBlocks(t, doomed, replica.File{Name: disk.Name, Disk: true, Blocks: disk.Blocks, Changed: changed, Base: rep.Mark}, true)
	if !errors.Is(err, wire.ErrLinkLost) {
		t.Fatalf("push to a server killed mid-update: %v", err)
	}
	again := child(t, v.root, 0)
	st, rep2, err := pushBlocks(t, again, replica.File{Name: disk.Name, Disk: true, Blocks: disk.Blocks, Changed: changed, Base: rep.Mark}, true)
	must(t, err)
	if !rep2.Incremental || st.BlocksChanged != 3 {
		t.Fatalf("run after the killed one: %+v %+v; want incremental, 3 blocks", rep2, st)
	}
	if disktest.FileSum(t, v.replicaDisk) != disktest.FileSum(t, v.disk.path) {
		t.Fatal("replica differs from its source after the repaired run")
	}

	// Someone writes into the far copy (starts it there): its mark changes, so the next run
	// compares the disk whole and repairs the block, though the ranges do not name it.
	f, err := os.OpenFile(v.replicaDisk, os.O_WRONLY, 0)
	must(t, err)
	_, err = f.WriteAt([]byte("guest wrote here"), 20*bs)
	must(t, err)
	must(t, f.Close())
	v.disk.fill(50)
	s = inProcess(t, v.root, serve.Options{})
	st, rep3, err := pushBlocks(t, s, replica.File{Name: disk.Name, Disk: true, Blocks: disk.Blocks, Changed: ranges{{50 * bs, 51 * bs}}, Base: rep2.Mark}, true)
	must(t, err)
	if rep3.Incremental || !strings.Contains(rep3.Why, "changed on the far side") || st.BlocksChanged != 2 {
		t.Fatalf("run after the far copy changed: %+v %+v; want a whole compare sending blocks 20 and 50", rep3, st)
	}
	if disktest.FileSum(t, v.replicaDisk) != disktest.FileSum(t, v.disk.path) {
		t.Fatal("replica differs from its source after the whole compare")
	}

	// A far side that reports no marks (Options.Marks off) is compared whole.
	_, rep4, err := pushBlocks(t, s, replica.File{Name: disk.Name, Disk: true, Blocks: disk.Blocks, Changed: ranges{}, Base: rep3.Mark}, false)
	must(t, err)
	if rep4.Incremental || !strings.Contains(rep4.Why, "does not report") {
		t.Fatalf("run without marks: %+v", rep4)
	}
	// A replica that was removed is written whole again.
	must(t, os.Remove(v.replicaDisk))
	_, rep5, err := pushBlocks(t, s, replica.File{Name: disk.Name, Disk: true, Blocks: disk.Blocks, Changed: ranges{}, Base: rep4.Mark}, true)
	must(t, err)
	if rep5.Incremental || !strings.Contains(rep5.Why, "missing") {
		t.Fatalf("run after the replica was removed: %+v", rep5)
	}
	if disktest.FileSum(t, filepath.Join(v.root, "vm1", disk.Name)) != disktest.FileSum(t, v.disk.path) {
		t.Fatal("rewritten replica differs from its source")
	}
}

// Holes of a block source (ranges it does not list) stay holes on the far side.
func TestBlockSourceHolesStayHoles(t *testing.T) {
	v := newVM(t)
	s := inProcess(t, v.root, serve.Options{})
	// Blocks 0-2, 10-11, 40 and 63 hold data (newVM).
	data := ranges{{0, 3 * bs}, {10 * bs, 12 * bs}, {40 * bs, 41 * bs}, {63 * bs, 64 * bs}}
	st, _, err := pushBlocks(t, s, replica.File{Name: "vm1-flat.vmdk", Disk: true, Blocks: openBlocks(t, v.disk.path, data)}, true)
	must(t, err)
	if st.BytesRead != 7*bs || st.BlocksChanged != 7 {
		t.Errorf("full run of a block source: %+v; want the 7 data blocks read", st)
	}
	if disktest.FileSum(t, v.replicaDisk) != disktest.FileSum(t, v.disk.path) {
		t.Fatal("replica differs from its source")
	}
	if a := disktest.Allocated(t, v.replicaDisk); a > 8*bs {
		t.Errorf("replica allocates %d bytes: holes were filled", a)
	}
}
