package repo

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// Disk names become file names at restore: a manifest whose disk names or paths would lead out
// of the restore target is refused when written and when read.
func TestSnapshotDiskNamesMustBePlain(t *testing.T) {
	_, r := newRepo(t)
	for _, d := range []Disk{
		{Name: "../../etc/cron.d/evil", Format: "vmdk"},
		{Name: "..", Format: "raw"},
		{Name: "a/b"},
		{Name: "x\x00y"},
		{Name: "ok.img", Path: "/vmfs/volumes/ds/.."},
		{Name: "ok.img", Path: "/"},
	} {
		sn := &Snapshot{Version: 1, Kind: SnapshotImage, Source: "x", Disks: []Disk{d}}
		if _, err := r.SaveSnapshot(context.Background(), sn); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "crafted") {
			t.Errorf("save with disk %+v: %v", d, err)
		}
		b, _ := json.Marshal(sn)
		if _, err := decodeSnapshot(b); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "crafted") {
			t.Errorf("decode with disk %+v: %v", d, err)
		}
	}
	ok, _ := json.Marshal(&Snapshot{Version: 1, Kind: SnapshotImage, Disks: []Disk{
		{Name: "web01.vmdk", Path: "/vmfs/volumes/ds1/web01/web01-flat.vmdk"}, {Name: "", Path: ""}, {Name: "disk image (1).img"}}})
	if _, err := decodeSnapshot(ok); err != nil {
		t.Errorf("plain names refused: %v", err)
	}
}

// LogicalSize is what a snapshot holds; a files snapshot from before sizes were recorded has
// none (old snapshots stay readable).
func TestLogicalSize(t *testing.T) {
	var old Snapshot
	if err := json.Unmarshal([]byte(`{"version":1,"kind":"files","stats":{"bytes_read":11}}`), &old); err != nil {
		t.Fatal(err)
	}
	if _, ok := old.LogicalSize(); ok {
		t.Fatal("an old files snapshot claims a size")
	}
	n := int64(111 << 20)
	files := Snapshot{Kind: SnapshotFiles, Size: &n, Stats: Stats{BytesRead: 11}}
	b, _ := json.Marshal(&files)
	var back Snapshot
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if got, ok := back.LogicalSize(); !ok || got != n {
		t.Fatalf("files snapshot size %d %v, want %d", got, ok, n)
	}
	vm := Snapshot{Kind: SnapshotVM, Disks: []Disk{{Size: 4 << 20}, {Size: 1 << 20}}}
	if got, ok := vm.LogicalSize(); !ok || got != 5<<20 {
		t.Fatalf("VM snapshot size %d %v", got, ok)
	}
}
