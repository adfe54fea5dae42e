package disk_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/disk"
	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/images/repo"
)

// memSource is a disk in memory whose Next returns the listed ranges.
type memSource struct {
	data   []byte
	ranges [][2]int64
	reads  int64
}

func (s *memSource) Size() int64 { return int64(len(s.data)) }
func (s *memSource) ReadAt(p []byte, off int64) (int, error) {
	s.reads += int64(len(p))
	return copy(p, s.data[off:]), nil
}
func (s *memSource) Next(_ context.Context, off int64) (int64, int64, bool, error) {
	for _, r := range s.ranges {
		if r[1] > off {
			return max(r[0], off), r[1], true, nil
		}
	}
	return 0, 0, false, nil
}

// A full backup from a source reads only its ranges (the rest are holes); an incremental with
// the full one as parent reads only the changed ranges and still restores to the whole new disk.
func TestBackupSourceIncremental(t *testing.T) {
	const bs = 64 << 10
	st := memblobs.New(bs)
	ctx := context.Background()
	data := make([]byte, 40*bs+100) // a short last block
	copy(data[0:], memblobs.RandBytes(1, 3*bs))
	copy(data[20*bs:], memblobs.RandBytes(2, 2*bs))
	copy(data[40*bs:], memblobs.RandBytes(3, 100))
	src := &memSource{data: data, ranges: [][2]int64{{0, 3 * bs}, {20 * bs, 22 * bs}, {40 * bs, 40*bs + 100}}}
	full, fst, err := disk.BackupSource(ctx, st, src, disk.SourceOptions{Name: "vda"})
	if err != nil {
		t.Fatal(err)
	}
	if fst.BytesRead != 5*bs+100 || src.reads != fst.BytesRead {
		t.Fatalf("full read %d (source saw %d), want %d", fst.BytesRead, src.reads, 5*bs+100)
	}
	checkStream(t, st, full, data)

	next := bytes.Clone(data)
	copy(next[1*bs+10:], []byte("changed"))        // inside a block the parent has
	copy(next[30*bs:], memblobs.RandBytes(4, 500)) // a new block where the parent has a hole
	copy(next[40*bs+50:], []byte("tail"))          // the short last block
	inc := &memSource{data: next, ranges: [][2]int64{{1*bs + 10, 1*bs + 17}, {30 * bs, 30*bs + 500}, {40*bs + 50, 40*bs + 54}}}
	d, ist, err := disk.BackupSource(ctx, st, inc, disk.SourceOptions{Name: "vda", Parent: &full})
	if err != nil {
		t.Fatal(err)
	}
	if ist.BytesRead != 2*bs+100 {
		t.Fatalf("incremental read %d, want %d (three touched blocks)", ist.BytesRead, 2*bs+100)
	}
	if d.Allocated != 6*bs+100 {
		t.Fatalf("allocated %d, want %d", d.Allocated, 6*bs+100)
	}
	checkStream(t, st, d, next)

	// A parent of another size is refused: the caller must read the disk whole.
	short := full
	short.Size -= bs
	if _, _, err := disk.BackupSource(ctx, st, inc, disk.SourceOptions{Name: "vda", Parent: &short}); err == nil {
		t.Fatal("a parent of another size was accepted")
	}
}

// checkStream restores d in order and compares it with want.
func checkStream(t *testing.T, st repo.BlobStore, d repo.Disk, want []byte) {
	t.Helper()
	var got bytes.Buffer
	if _, err := disk.Stream(context.Background(), st, d, &got, disk.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatal("restored disk differs from the source")
	}
}

// Reader serves any range of a snapshot's disk, across blocks, holes and the short last block.
func TestReader(t *testing.T) {
	const bs = 64 << 10
	st := memblobs.New(bs)
	data := make([]byte, 10*bs+77)
	copy(data[bs-5:], memblobs.RandBytes(9, 2*bs))
	copy(data[10*bs:], memblobs.RandBytes(8, 77))
	src := &memSource{data: data, ranges: [][2]int64{{0, int64(len(data))}}}
	d, _, err := disk.BackupSource(context.Background(), st, src, disk.SourceOptions{Name: "vda"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := disk.NewReader(context.Background(), st, d, disk.ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]int64{{0, 10}, {bs - 10, 3 * bs}, {5 * bs, bs}, {10*bs + 70, 7}, {0, int64(len(data))}} {
		buf := make([]byte, c[1])
		if n, err := r.ReadAt(buf, c[0]); n != len(buf) || err != nil {
			t.Fatalf("read %v: %d %v", c, n, err)
		}
		if !bytes.Equal(buf, data[c[0]:c[0]+c[1]]) {
			t.Fatalf("read %v differs", c)
		}
	}
	if n, err := r.ReadAt(make([]byte, 10), int64(len(data))-4); n != 4 || err == nil {
		t.Fatalf("read past the end: %d %v", n, err)
	}
}

// With PartialBlocks an incremental reads only its ranges' bytes: a block they cover in part is
// completed from the parent's block (loaded from the repository, zeros where the parent has a
// hole) and stored as a patch of it; a block they cover whole is read whole. Both incrementals
// (the second over a parent whose blocks are patches) restore to the new disk.
func TestBackupSourcePartialBlocks(t *testing.T) {
	const bs = 64 << 10
	_, r := memblobs.LocalRepo(t, bs, repo.ChunkerParams{})
	ctx := context.Background()
	data := memblobs.RandBytes(1, 12*bs+100)
	clear(data[10*bs : 11*bs]) // a hole in the parent
	full, _, err := disk.BackupSource(ctx, r, &memSource{data: data, ranges: [][2]int64{{0, int64(len(data))}}}, disk.SourceOptions{Name: "vda"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ranges := [][2]int64{
		{bs + 10, bs + 17}, {bs + 17, bs + 30}, // adjacent pieces of one block
		{3*bs + 5000, 3*bs + 5100}, {3*bs + 40000, 3*bs + 40010}, // two pieces of one block
		{5 * bs, 6 * bs},            // a whole block
		{7*bs + 60000, 8*bs + 3000}, // across two blocks
		{10*bs + 100, 10*bs + 200},  // over the parent's hole
		{12*bs + 50, 12*bs + 54},    // the short last block
	}
	next := bytes.Clone(data)
	var want int64
	for i, rg := range ranges {
		copy(next[rg[0]:rg[1]], memblobs.RandBytes(uint64(10+i), int(rg[1]-rg[0])))
		want += rg[1] - rg[0]
	}
	inc := &memSource{data: next, ranges: ranges}
	d, st, err := disk.BackupSource(ctx, r, inc, disk.SourceOptions{Name: "vda", Parent: &full, PartialBlocks: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.BytesRead != want || inc.reads != want {
		t.Fatalf("read %d bytes (source saw %d), want the ranges' %d", st.BytesRead, inc.reads, want)
	}
	// Blocks 1, 3, 7 and 8 are patches of the parent's; 5 was read whole, 10 had no parent
	// blob, the last block is one sub-block.
	if st.BlocksPatched != 4 {
		t.Fatalf("%d blocks stored as patches, want 4", st.BlocksPatched)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	checkStream(t, r, d, next)

	// Again on top: the parent's block 1 is a patch now, so it is stored whole.
	third := bytes.Clone(next)
	copy(third[bs+20:], "again")
	d3, st3, err := disk.BackupSource(ctx, r, &memSource{data: third, ranges: [][2]int64{{bs + 20, bs + 25}}}, disk.SourceOptions{Name: "vda", Parent: &d, PartialBlocks: true})
	if err != nil {
		t.Fatal(err)
	}
	if st3.BytesRead != 5 || st3.BlocksPatched != 0 {
		t.Fatalf("third: read %d, %d patches", st3.BytesRead, st3.BlocksPatched)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	checkStream(t, r, d3, third)
}

// badSource answers Next with a fixed range whatever is asked: a source that misreports its map.
type badSource struct {
	memSource
	start, end int64
}

func (s *badSource) Next(_ context.Context, off int64) (int64, int64, bool, error) {
	return s.start, s.end, true, nil
}

// A source that answers with an empty range, or a range past the end of the disk, fails the
// backup with an error naming the range, for a full backup and for an incremental over a parent
// alike: it neither reads past the disk nor asks for the same offset for ever.
func TestBackupSourceBadRanges(t *testing.T) {
	const bs = 64 << 10
	data := memblobs.RandBytes(5, 4*bs)
	st := memblobs.New(bs)
	ctx := context.Background()
	parent, _, err := disk.BackupSource(ctx, st, &memSource{data: data, ranges: [][2]int64{{0, 4 * bs}}}, disk.SourceOptions{Name: "vda"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name       string
		start, end int64
		want       string
	}{
		{"empty range", 2 * bs, 2 * bs, "empty range"},
		{"backwards range", 2 * bs, bs, "empty range"},
		{"past the end", 5 * bs, 6 * bs, "empty range"},
	} {
		for _, inc := range []bool{false, true} {
			opts := disk.SourceOptions{Name: "vda"}
			if inc {
				opts.Parent, opts.PartialBlocks = &parent, true
			}
			done := make(chan error, 1)
			go func() {
				_, _, err := disk.BackupSource(ctx, st, &badSource{memSource: memSource{data: data}, start: c.start, end: c.end}, opts)
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("%s (incremental %v): err %v, want one naming the %s", c.name, inc, err, c.want)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("%s (incremental %v): the backup did not end", c.name, inc)
			}
		}
	}
}
