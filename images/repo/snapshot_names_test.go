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
