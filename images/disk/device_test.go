package disk

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/cron/testkit"
	"github.com/snapferry/snapferry/images/memblobs"
)

// loopDevice attaches file to a free loop device and returns its path; it skips when the
// kernel or the container does not allow loop devices (a privilege, not a missing tool).
func loopDevice(t *testing.T, file string) string {
	t.Helper()
	losetup := testkit.RequireTool(t, "losetup")
	out, err := exec.Command(losetup, "-f", "--show", file).CombinedOutput()
	if err != nil {
		t.Skipf("no loop device here: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command(losetup, "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("detach %s: %v: %s", dev, err, out)
		}
	})
	return dev
}

// A block device has no holes to seek and cannot be truncated: backup reads it whole (and
// still finds its zero blocks), restore writes holes as zeros over whatever was there.
func TestBlockDeviceBackupAndRestore(t *testing.T) {
	ctx := context.Background()
	const size = 4 << 20
	src := tempPath(t, "src.img")
	makeSparse(t, src, size,
		region{8 * testBlock, memblobs.RandBytes(1, 3*testBlock)},
		region{size - testBlock, memblobs.RandBytes(2, testBlock)})
	bs := memblobs.New(testBlock)
	want, _, err := Backup(ctx, bs, src, Options{})
	if err != nil {
		t.Fatal(err)
	}

	// The device's backing file is full of 0xff garbage that a restore must overwrite.
	backing := tempPath(t, "backing.img")
	if err := os.WriteFile(backing, bytes.Repeat([]byte{0xff}, size), 0o600); err != nil {
		t.Fatal(err)
	}
	dev := loopDevice(t, backing)
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := RestoreFile(ctx, bs, want, f, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(backing)
	if err != nil {
		t.Fatal(err)
	}
	srcData, _ := os.ReadFile(src)
	if !bytes.Equal(got, srcData) {
		t.Fatal("device content after restore differs from the image (holes not zeroed?)")
	}

	d, st, err := BackupFile(ctx, bs, f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Size != size || st.BytesRead != size {
		t.Fatalf("device backup: size %d, read %d, want %d both", d.Size, st.BytesRead, size)
	}
	if fmt.Sprint(d.Map) != fmt.Sprint(want.Map) {
		t.Fatal("device backup gives another block map than the image it holds")
	}

	// A device smaller than the disk is refused before anything is written.
	big := want
	big.Size = 2 * size
	big.Map = want.Map // checkDisk passes: one chunk covers both sizes at this block size
	if err := RestoreFile(ctx, bs, big, f, RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "needs") {
		t.Fatalf("restore to a too small device: %v", err)
	}
}
