package replica_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/snapferry/snapferry/images/disk/disktest"

	"github.com/snapferry/snapferry/transfer/replica"
	"github.com/snapferry/snapferry/transfer/serve"
)

func TestBlockSizeFor(t *testing.T) {
	for _, c := range []struct{ size, want int64 }{
		{0, 64 << 10},
		{8 << 30, 64 << 10},
		{64 << 30, 64 << 10},
		{64<<30 + 1, 128 << 10},
		{1 << 40, 1 << 20},
		{2 << 40, 2 << 20},
		{1 << 50, replica.MaxBlockSize},
	} {
		if got := replica.BlockSizeFor(c.size); got != c.want {
			t.Errorf("BlockSizeFor(%d) = %d, want %d", c.size, got, c.want)
		}
	}
}

// TestAutomaticBlockSizeSendsSmallWrites: with the default (automatic) block size, a few 64 KiB
// writes into a disk cost about their own size compressed on the wire, not whole megabytes.
func TestAutomaticBlockSizeSendsSmallWrites(t *testing.T) {
	root := t.TempDir()
	const small = 64 << 10
	d := newDisk(t, filepath.Join(t.TempDir(), "disk-flat.vmdk"), 256*small, small)
	d.fill(0, 1, 2, 40, 41, 128, 200, 255)
	files := []replica.File{{Name: "disk-flat.vmdk", Source: d.path, Disk: true}}
	s := inProcess(t, root, serve.Options{})
	if _, err := replica.Push(context.Background(), s.sess, "vm", files, replica.Options{}); err != nil {
		t.Fatal(err)
	}
	d.fill(1, 100, 201)
	st, err := replica.Push(context.Background(), s.sess, "vm", files, replica.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := disktest.FileSum(t, filepath.Join(root, "vm", "disk-flat.vmdk")), disktest.FileSum(t, d.path); got != want {
		t.Fatal("replica differs from the source")
	}
	if st.BlocksChanged != 3 || st.BytesChanged != 3*small {
		t.Errorf("incremental: %+v; want 3 changed blocks of 64 KiB", st)
	}
	if limit := compressedSize(t, d, 1, 100, 201) * 12 / 10; st.BytesSent > limit {
		t.Errorf("incremental sent %d bytes, want <= %d (1.2x the three written blocks compressed)", st.BytesSent, limit)
	}
}
