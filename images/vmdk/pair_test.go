package vmdk

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/images/disk"
	"github.com/snapferry/snapferry/images/disk/disktest"
	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/images/overwrite"
	"github.com/snapferry/snapferry/images/repo"
)

// makePair writes dir/web01.vmdk (the reference sample resized to sectors) and a sparse
// web01-flat.vmdk with some data, and returns the descriptor path and the flat contents.
func makePair(t *testing.T, dir string, sectors int64) (string, []byte) {
	t.Helper()
	text := strings.Replace(string(readTestdata(t, "web01.vmdk")), "RW 75497472 VMFS", "RW "+strconv.FormatInt(sectors, 10)+" VMFS", 1)
	desc := filepath.Join(dir, "web01.vmdk")
	if err := os.WriteFile(desc, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	size := sectors * SectorSize
	data := make([]byte, size)
	copy(data[4096:], memblobs.RandBytes(1, 64<<10))
	copy(data[size-8192:], memblobs.RandBytes(2, 8192))
	disktest.SparseFile(t, filepath.Join(dir, "web01-flat.vmdk"), size,
		disktest.Piece{Off: 4096, Data: data[4096 : 4096+64<<10]}, disktest.Piece{Off: size - 8192, Data: data[size-8192:]})
	return desc, data
}

func TestBackupRestorePair(t *testing.T) {
	t.Run("memory", func(t *testing.T) { testBackupRestorePair(t, memblobs.New(1<<20)) })
	t.Run("repository", func(t *testing.T) {
		_, r := memblobs.LocalRepo(t, 1<<20, repo.ChunkerParams{})
		testBackupRestorePair(t, r)
	})
}

func testBackupRestorePair(t *testing.T, bs repo.BlobStore) {
	ctx := context.Background()
	src := t.TempDir()
	desc, data := makePair(t, src, 8192) // 4 MiB disk
	d, st, err := Backup(ctx, bs, desc, disk.Options{Device: "scsi0:0"})
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := bs.(interface{ Flush(context.Context) error }); ok {
		if err := f.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if d.Format != "vmdk" || d.Name != "web01.vmdk" || d.Device != "scsi0:0" || d.Size != 4<<20 ||
		d.Path != filepath.Join(src, "web01-flat.vmdk") || d.Descriptor != string(readDesc(t, desc)) {
		t.Fatalf("disk %+v", d)
	}
	if st.BytesRead >= 4<<20 {
		t.Fatalf("read %d bytes: the thin extent's holes were read", st.BytesRead)
	}

	dst := t.TempDir()
	newDesc := filepath.Join(dst, "web01-restored.vmdk")
	if err := Restore(ctx, bs, d, newDesc, disk.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dst, "web01-restored-flat.vmdk"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("restored flat extent differs")
	}
	r, _, err := ReadDescriptor(newDesc)
	if err != nil {
		t.Fatal(err)
	}
	orig, _ := Parse(readDesc(t, desc))
	if r.Extents[0].File != "web01-restored-flat.vmdk" || r.Size() != d.Size || r.CID == orig.CID ||
		r.DDB["ddb.geometry.heads"] != "255" {
		t.Fatalf("restored descriptor: extent %+v, CID %08x (was %08x)", r.Extents[0], r.CID, orig.CID)
	}
	// Back up the restored pair: same blocks, nothing new.
	_, st2, err := Backup(ctx, bs, newDesc, disk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st2.BlobsNew != 0 {
		t.Fatalf("backup of the restored pair added %d blobs", st2.BlobsNew)
	}

	// Restoring again over the same pair leaves it alone (its descriptor differs only in
	// CID); once the flat extent changes, both are kept unless Overwrite.
	before := readDesc(t, newDesc)
	if err := Restore(ctx, bs, d, newDesc, disk.RestoreOptions{}); err != nil {
		t.Fatalf("restore over an identical pair: %v", err)
	}
	if !bytes.Equal(readDesc(t, newDesc), before) {
		t.Fatal("identical pair: descriptor rewritten")
	}
	flat := filepath.Join(dst, "web01-restored-flat.vmdk")
	if err := os.WriteFile(flat, []byte("MY LOCAL EDIT"), 0o600); err != nil {
		t.Fatal(err)
	}
	var nr *overwrite.NotReplaced
	if err := Restore(ctx, bs, d, newDesc, disk.RestoreOptions{}); !errors.As(err, &nr) || len(nr.Paths) != 2 {
		t.Fatalf("restore over a changed pair: %v, want descriptor and flat kept", err)
	}
	if err := Restore(ctx, bs, d, newDesc, disk.RestoreOptions{Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(flat); !bytes.Equal(got, data) {
		t.Fatal("Overwrite did not replace the flat extent")
	}
}

func readDesc(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBackupPairRefusals(t *testing.T) {
	ctx := context.Background()
	bs := memblobs.New(1 << 20)
	dir := t.TempDir()
	desc, _ := makePair(t, dir, 8192)

	// The flat extent passed instead of the descriptor.
	if _, _, err := Backup(ctx, bs, filepath.Join(dir, "web01-flat.vmdk"), disk.Options{}); err == nil || !strings.Contains(err.Error(), "descriptor") {
		t.Errorf("flat extent as descriptor: %v", err)
	}
	// A snapshot delta.
	delta := filepath.Join(dir, "sql-000001.vmdk")
	os.WriteFile(delta, readTestdata(t, "sql-000001.vmdk"), 0o600)
	if _, _, err := Backup(ctx, bs, delta, disk.Options{}); err == nil || !strings.Contains(err.Error(), "vmfsSparse") {
		t.Errorf("delta disk: %v", err)
	}
	// Descriptor and extent disagree on the size.
	os.Truncate(filepath.Join(dir, "web01-flat.vmdk"), 4<<20+512)
	if _, _, err := Backup(ctx, bs, desc, disk.Options{}); err == nil || !strings.Contains(err.Error(), "descriptor says") {
		t.Errorf("size mismatch: %v", err)
	}
	// The extent is missing.
	os.Remove(filepath.Join(dir, "web01-flat.vmdk"))
	if _, _, err := Backup(ctx, bs, desc, disk.Options{}); err == nil || !strings.Contains(err.Error(), "web01-flat.vmdk") {
		t.Errorf("missing extent: %v", err)
	}
	// Restoring a raw disk as a VMDK pair is refused.
	if err := Restore(ctx, bs, repo.Disk{Name: "raw", Format: "raw", Size: 1, BlockSize: 1 << 20}, filepath.Join(dir, "x.vmdk"), disk.RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "raw image") {
		t.Errorf("raw disk restored as vmdk: %v", err)
	}
}
